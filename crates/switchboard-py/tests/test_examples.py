"""The agent-framework example (`examples/agent_tools.py`) against the testkit."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import switchboard

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "agent_tools.py"


def load_example():
    spec = importlib.util.spec_from_file_location("agent_tools", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


async def test_tool_functions_call_tools_and_turn_failures_into_text(peers):
    example = load_example()
    config = {"mcpServers": {"kit": peers.testkit_stdio()}}
    async with switchboard.Hub(config) as hub:
        functions = {f.name: f for f in example.tool_functions(hub, timeout=0.5)}
        echo = functions["kit__echo"]
        assert echo.parameters["properties"]["message"]["type"] == "string"
        assert await echo.call(message="hi") == "hi"
        assert await functions["kit__fail"].call(message="no") == "Tool 'kit__fail' failed: no"
        timed_out = await functions["kit__sleep"].call(ms=5000)
        assert "(timeout)" in timed_out and "may have run" in timed_out
        structured = await functions["kit__structured"].call()
        assert "21.5" in structured


async def test_nat_functions_route_each_user_to_their_own_session(peers):
    example = load_example()
    url = peers.testkit_http("streamable-http")
    config = f"""
[variables]
user = "nobody"

[servers.kit]
url = "{url}"
session_mode = "per_session"
headers = {{ X-User = "${{user}}" }}
"""
    async with switchboard.Hub(config) as hub:
        alice = example.nat_functions(hub, "alice", {"user": "alice"})
        bob = example.nat_functions(hub, "bob", {"user": "bob"})
        seen = json.loads(await alice["kit__echo_headers"].call())
        assert {k.lower(): v for k, v in seen.items()}["x-user"] == "alice"
        seen = json.loads(await bob["kit__echo_headers"].call())
        assert {k.lower(): v for k, v in seen.items()}["x-user"] == "bob"
        assert hub.session_count("kit") == 2
