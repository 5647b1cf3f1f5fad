"""FastMCP's proxy (`create_proxy`) over one MCP server, served over Streamable HTTP, for
`scripts/compare-gateways`. Usage: fastmcp_proxy.py UPSTREAM_URL PORT."""

import sys

from fastmcp.server import create_proxy

if __name__ == "__main__":
    upstream, port = sys.argv[1], int(sys.argv[2])
    proxy = create_proxy(upstream, name="fastmcp-proxy")
    proxy.run(
        transport="http", host="127.0.0.1", port=port, log_level="warning", show_banner=False
    )
