"""One MCP session of the official Python SDK client (PyPI `mcp`, as in client.py) spread over
several gateway replicas: every request of the session goes to the replica chosen last, with
the same Mcp-Session-Id, as a round-robin load balancer would send it. The SDK's requests are
redirected by an httpx request hook (URL and Host), the session itself is the SDK's.

Usage: python scale_client.py '<program JSON>'
  {"urls": [url, ...], "headers": {...}, "steps": [STEP, ...]}
Steps, each answered by one JSON line on stdout, in order:
  {"op": "via", "to": i}                 -> {"via": i}; later requests go to urls[i]
  {"op": "list"} / {"op": "call", ...}   -> as in client.py
  {"op": "session"}                      -> {"session_id": the id the gateway gave}
  {"op": "delete"}                       -> {"status": HTTP status of a DELETE of the session}
  {"op": "pause"}                        -> {"paused": true}, then waits for a line on stdin
A refused initialize is one line, {"connect_error": message, "code": code}.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

import httpx2
from mcp import ClientSession, MCPError
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

sys.path.insert(0, os.path.dirname(__file__))
from client import run  # noqa: E402


async def main() -> None:
    program = json.loads(sys.argv[1])
    urls = [httpx2.URL(url) for url in program["urls"]]
    state = {"to": 0, "session_id": None}

    async def redirect(request: httpx2.Request) -> None:
        target = urls[state["to"]]
        request.url = request.url.copy_with(host=target.host, port=target.port)
        request.headers["Host"] = f"{target.host}:{target.port}"

    async def remember(response: httpx2.Response) -> None:
        if response.headers.get("mcp-session-id"):
            state["session_id"] = response.headers["mcp-session-id"]

    http = create_mcp_http_client(headers=program.get("headers") or {})
    http.event_hooks = {"request": [redirect], "response": [remember]}
    async with http:
        async with streamable_http_client(
            program["urls"][0], http_client=http, terminate_on_close=False
        ) as streams:
            async with ClientSession(streams[0], streams[1]) as session:
                try:
                    await session.initialize()
                except MCPError as error:
                    refused = {"connect_error": error.error.message, "code": error.error.code}
                    print(json.dumps(refused), flush=True)
                    return
                for step in program["steps"]:
                    print(json.dumps(await step_of(session, http, state, step, program)), flush=True)


async def step_of(session, http, state, step: dict, program: dict) -> dict:
    if step["op"] == "via":
        state["to"] = step["to"]
        return {"via": step["to"]}
    if step["op"] == "session":
        return {"session_id": state["session_id"]}
    if step["op"] == "delete":
        headers = {"mcp-session-id": state["session_id"], "mcp-protocol-version": "2025-11-25"}
        # The request hook sends it to the replica chosen last.
        response = await http.delete(program["urls"][0], headers=headers)
        return {"status": response.status_code}
    if step["op"] == "pause":
        print(json.dumps({"paused": True}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        return {"resumed": True}
    try:
        return await asyncio.wait_for(run(session, step), 30)
    except Exception as error:  # a failed request, as the test sees it
        return {"failed": f"{type(error).__name__}: {error}"}


if __name__ == "__main__":
    asyncio.run(main())
