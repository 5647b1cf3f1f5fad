"""Resources and prompts through switchboard.Hub / BlockingHub, against the testkit."""

from __future__ import annotations

import pytest

import switchboard
from switchboard import errors

BOUND = 30.0  # keeps a broken build from hanging a test; never a timing goal
HELLO = "kit+testkit://static/hello.txt"


def kit_config(peers) -> dict:
    return {"mcpServers": {"kit": peers.testkit_stdio()}}


def test_blocking_hub_lists_and_reads_resources_and_gets_prompts(peers):
    with switchboard.BlockingHub(kit_config(peers)) as hub:
        resources = hub.resources()
        assert resources["failures"] == []
        hello = next(r for r in resources["items"] if r["uri"] == HELLO)
        assert hello["server"] == "kit"
        assert hello["server_uri"] == "testkit://static/hello.txt"
        assert hello["mime_type"] == "text/plain"

        read = hub.read_resource(HELLO, timeout=BOUND)
        assert read["contents"] == [
            {"uri": HELLO, "mimeType": "text/plain", "text": "Hello from the testkit."}
        ]
        pixel = hub.read_resource("kit+testkit://static/pixel.png")["contents"][0]
        assert pixel["mimeType"] == "image/png"
        assert pixel["blob"].startswith("iVBOR") and "text" not in pixel

        templates = hub.resource_templates()["items"]
        assert [t["uri_template"] for t in templates] == ["kit+testkit://items/{id}"]
        item = hub.read_resource("kit+testkit://items/5")["contents"][0]
        assert item["text"] == "item 5"

        prompts = {p["name"]: p for p in hub.prompts()["items"]}
        assert prompts["kit__greet"]["prompt"] == "greet"
        assert [(a["name"], a["required"]) for a in prompts["kit__greet"]["arguments"]] == [
            ("name", True),
            ("style", False),
        ]
        got = hub.get_prompt("kit__greet", {"name": "Ada"}, timeout=BOUND)
        assert got["messages"] == [
            {"role": "user", "content": {"type": "text", "text": "Hello, Ada!"}}
        ]

        with pytest.raises(errors.InvalidArgumentsError):
            hub.get_prompt("kit__greet")
        with pytest.raises(errors.NotFoundError) as unknown:
            hub.get_prompt("kit__nope")
        assert isinstance(unknown.value, LookupError)
        assert unknown.value.error_class == "not_found"
        with pytest.raises(errors.NotFoundError) as missing:
            hub.read_resource("kit+testkit://nope")
        assert missing.value.server == "kit"


async def test_async_hub_reads_and_gets_prompts_per_session(peers):
    async with switchboard.Hub(kit_config(peers)) as hub:
        session = switchboard.Session("alice")
        read = await hub.read_resource(HELLO, session=session)
        assert read["contents"][0]["text"] == "Hello from the testkit."
        listed = await hub.resources()
        assert any(r["uri"] == HELLO for r in listed["items"])
        assert any(t["server"] == "kit" for t in (await hub.resource_templates())["items"])
        assert "kit__summary" in [p["name"] for p in (await hub.prompts())["items"]]
        summary = await hub.get_prompt("kit__summary", session=session, timeout=BOUND)
        assert [m["role"] for m in summary["messages"]] == ["user", "assistant"]
        with pytest.raises(errors.NotFoundError):
            await hub.read_resource("testkit://static/hello.txt")


def private_kit_config(peers) -> str:
    """A per_session testkit whose lists are private: each user's hold `mine_<user>`."""
    url = peers.testkit_http("streamable-http", "--private-lists")
    return f"""
[variables]
user = "nobody"

[servers.kit]
url = "{url}"
session_mode = "per_session"
headers = {{ X-User = "${{user}}" }}
"""


def mine(names, marker):
    return sorted(n for n in names if marker in n)


def test_blocking_hub_shows_each_session_its_private_lists(peers):
    with switchboard.BlockingHub(private_kit_config(peers)) as hub:
        alice = switchboard.Session("alice", {"user": "alice"})
        assert mine((t["name"] for t in hub.tools()), "mine_") == ["kit__mine_nobody"]
        assert mine((t["name"] for t in hub.tools_for(alice)), "mine_") == ["kit__mine_alice"]
        assert hub.call("kit__mine_alice", session=alice).text == "alice"
        uris = (r["uri"] for r in hub.resources(session=alice)["items"])
        assert mine(uris, "testkit://mine/") == ["kit+testkit://mine/alice"]
        prompts = (p["name"] for p in hub.prompts(session=alice)["items"])
        assert mine(prompts, "mine_") == ["kit__mine_alice"]
        uris = (r["uri"] for r in hub.resources()["items"])
        assert mine(uris, "testkit://mine/") == ["kit+testkit://mine/nobody"]


async def test_async_hub_shows_each_session_its_private_lists(peers):
    async with switchboard.Hub(private_kit_config(peers)) as hub:
        bob = switchboard.Session("bob", {"user": "bob"})
        tools = await hub.tools_for(bob, "openai")
        names = (t["function"]["name"] for t in tools)
        assert mine(names, "mine_") == ["kit__mine_bob"]
        uris = (r["uri"] for r in (await hub.resources(session=bob))["items"])
        assert mine(uris, "testkit://mine/") == ["kit+testkit://mine/bob"]
