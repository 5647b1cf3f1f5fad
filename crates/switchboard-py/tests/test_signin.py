"""OAuth from Python: a hub signs in through its `opener` (here a callable that follows
the authorization server's redirect, as a browser would), keeps the tokens in its
`token_store`, and a later hub on the same store needs no sign-in. The testkit is a real
OAuth-protected MCP server with its own authorization server (`--oauth-client`)."""

import json
import urllib.request

import pytest

import switchboard


def follow(server: str, url: str) -> None:
    """The browser: GET the authorization URL; the redirect lands on the hub's callback."""
    assert server == "kit"
    urllib.request.urlopen(url, timeout=30).read()


def whoami(hub) -> dict:
    result = hub.call("kit__whoami")
    assert not result.is_error, result.text
    return json.loads(result.text)


def test_blocking_hub_signs_in_through_its_opener_and_the_store_keeps_the_token(peers, tmp_path):
    url = peers.testkit_http("streamable-http", "--oauth-client", "bot:s3cret-bot")
    config = {"mcpServers": {"kit": {"url": url}}}
    opened = []

    def opener(server: str, url: str) -> None:
        opened.append(server)
        follow(server, url)

    with switchboard.BlockingHub(config, token_store=tmp_path, opener=opener) as hub:
        assert whoami(hub)["subject"] == "user"
    assert opened == ["kit"]
    assert list(tmp_path.rglob("*.json")), "the token is kept in the store's directory"

    # Same store, no opener: the kept token serves.
    with switchboard.BlockingHub(config, token_store=tmp_path) as hub:
        assert whoami(hub)["subject"] == "user"
    assert opened == ["kit"]


async def test_async_hub_without_an_opener_reports_needs_auth_and_memory_keeps_nothing(peers):
    url = peers.testkit_http("streamable-http", "--oauth-client", "bot:s3cret-bot")
    config = {"mcpServers": {"kit": {"url": url}}}
    async with switchboard.Hub(config, token_store="memory") as hub:
        health = hub.health()
        assert health["servers"][0]["state"] == "needs_auth", health
    async with switchboard.Hub(config, token_store="memory", opener=follow) as hub:
        result = await hub.call("kit__whoami")
        assert json.loads(result.text)["subject"] == "user"


def test_bad_sign_in_options_are_refused_with_what_to_pass():
    config = {"mcpServers": {"kit": {"url": "http://127.0.0.1:9/mcp"}}}
    with pytest.raises(ValueError, match="opener must be"):
        switchboard.BlockingHub(config, opener="firefox")
    with pytest.raises(ValueError, match="token_store must be"):
        switchboard.BlockingHub(config, token_store=42)
