"""A downstream MCP client for the gateway's tests: the official Python SDK (PyPI `mcp`, pinned
in crates/switchboard-py/tests/requirements.txt, installed into target/pyvenv by
./scripts/test) over Streamable HTTP, or legacy HTTP+SSE with `"transport": "sse"`.

Usage: python client.py '<program JSON>'
  {"url": "...", "headers": {...}, "steps": [STEP, ...]}
Steps, each answered by one JSON line on stdout, in order:
  {"op": "list"}                        -> {"tools": [names]}
  {"op": "call", "name", "arguments"}   -> the CallToolResult (MCP's JSON), or {"error", "code"}
      (optional "meta": the request's `_meta`, e.g. a W3C `traceparent`)
A refused connection (initialize failed) is one line, {"connect_error": message, "code": the
JSON-RPC code the SDK made of it}, and no steps run.
"""

from __future__ import annotations

import asyncio
import json
import sys

from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp import MCPError


async def run(session: ClientSession, step: dict) -> dict:
    if step["op"] == "list":
        listed = await session.list_tools()
        return {"tools": [tool.name for tool in listed.tools]}
    if step["op"] == "call":
        try:
            result = await session.call_tool(
                step["name"], step.get("arguments") or {}, meta=step.get("meta")
            )
        except MCPError as error:
            return {"error": error.error.message, "code": error.error.code}
        return result.model_dump(by_alias=True, mode="json", exclude_none=True)
    raise ValueError(f"unknown step {step['op']}")


async def main_sse(program: dict) -> None:
    """The program over the legacy HTTP+SSE transport (`sse_client`)."""
    async with sse_client(program["url"], headers=program.get("headers") or {}) as streams:
        async with ClientSession(streams[0], streams[1]) as session:
            await session.initialize()
            for step in program["steps"]:
                print(json.dumps(await run(session, step)), flush=True)


async def main() -> None:
    program = json.loads(sys.argv[1])
    if program.get("transport") == "sse":
        await main_sse(program)
        return
    async with create_mcp_http_client(headers=program.get("headers") or {}) as http:
        async with streamable_http_client(program["url"], http_client=http) as streams:
            async with ClientSession(streams[0], streams[1]) as session:
                try:
                    await session.initialize()
                except MCPError as error:
                    refused = {"connect_error": error.error.message, "code": error.error.code}
                    print(json.dumps(refused), flush=True)
                    return
                for step in program["steps"]:
                    print(json.dumps(await run(session, step)), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
