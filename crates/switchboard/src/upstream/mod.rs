//! One live connection to one MCP server.
