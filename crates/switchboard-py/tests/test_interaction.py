"""Input handlers and progress callbacks from Python, against the testkit's interactive tools
(classic servers ask with server-to-client requests, 2026-07-28 ones with input-required
results)."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest

import switchboard

BOUND = 30.0  # keeps a broken build from hanging a test; never a timing goal
LIFECYCLES = [(), ("--lifecycle", "modern")]


def kit_config(peers, flags) -> dict:
    return {"mcpServers": {"kit": peers.testkit_stdio(*flags)}}


class Grace:
    """Answers forms with a name, URLs with yes, sampling with a fixed text."""

    answers_url_elicitation = True

    def __init__(self) -> None:
        self.asked: list[dict] = []

    def elicit(self, request):
        self.asked.append(request)
        if request["mode"] == "url":
            return True
        return {"name": "Grace", "age": 85}

    def sample(self, request):
        self.asked.append(request)
        return {"text": f"echo: {request['text']}", "model": "test-model"}


def answer(result) -> dict:
    return json.loads(result.text)


@pytest.mark.parametrize("flags", LIFECYCLES, ids=["classic", "modern"])
def test_a_blocking_hubs_handler_answers_forms_urls_and_sampling(peers, flags):
    grace = Grace()
    with switchboard.BlockingHub(kit_config(peers, flags), input_handler=grace) as hub:
        asked = answer(hub.call("kit__ask", timeout=BOUND))
        assert asked["action"] == "accept"
        assert asked["content"] == {"name": "Grace", "age": 85}
        form = grace.asked[0]
        assert form["mode"] == "form" and form["server"] == "kit"
        assert form["schema"]["properties"]["name"]["default"] == "Ada"

        visited = answer(hub.call("kit__visit", timeout=BOUND))
        assert visited["action"] == "accept"
        assert grace.asked[1]["url"] == "https://example.com/sign-in"

        sampled = answer(hub.call("kit__sample", {"prompt": "hello"}, timeout=BOUND))
        assert sampled["model"] == "test-model"
        assert sampled["content"]["text"] == "echo: hello"


def test_without_a_handler_forms_are_declined(peers):
    with switchboard.BlockingHub(kit_config(peers, ())) as hub:
        asked = hub.call("kit__ask", timeout=BOUND)
        assert "decline" in asked.text


def test_a_handler_that_raises_declines_that_request_only(peers):
    class Broken:
        def elicit(self, request):
            raise RuntimeError("bug in the handler")

    with switchboard.BlockingHub(kit_config(peers, ()), input_handler=Broken()) as hub:
        assert answer(hub.call("kit__ask", timeout=BOUND))["action"] == "decline"
        assert hub.call("kit__echo", {"message": "still fine"}).text == "still fine"


def test_an_object_without_elicit_or_sample_is_refused(peers):
    with pytest.raises(TypeError, match="elicit"):
        switchboard.BlockingHub(kit_config(peers, ()), input_handler=object())


@pytest.mark.parametrize("flags", LIFECYCLES, ids=["classic", "modern"])
def test_async_handlers_run_on_the_hubs_loop_and_a_sessions_handler_wins(peers, flags):
    class OnLoop:
        def __init__(self) -> None:
            self.threads: list[int] = []

        async def elicit(self, request):
            self.threads.append(threading.get_ident())
            await asyncio.sleep(0)
            return {"name": "Loop", "age": 1}

    class Alice:
        def elicit(self, request):
            return {"name": "Alice", "age": 30}

    async def main() -> None:
        on_loop = OnLoop()
        config = kit_config(peers, flags)
        async with switchboard.Hub(config, input_handler=on_loop) as hub:
            asked = answer(await hub.call("kit__ask", timeout=BOUND))
            assert asked["content"]["name"] == "Loop"
            assert on_loop.threads == [threading.get_ident()]

            alice = switchboard.Session("alice", input_handler=Alice())
            asked = answer(await hub.call("kit__ask", session=alice, timeout=BOUND))
            assert asked["content"]["name"] == "Alice"

    asyncio.run(main())


def test_progress_reaches_the_caller_in_order(peers):
    seen: list[tuple] = []
    with switchboard.BlockingHub(kit_config(peers, ())) as hub:
        result = hub.call(
            "kit__progress",
            {"count": 3, "delay_ms": 10},
            timeout=BOUND,
            on_progress=lambda *p: seen.append(p),
        )
    assert result.text == "done 3"
    assert seen == [
        (1.0, 3.0, "step 1 of 3"),
        (2.0, 3.0, "step 2 of 3"),
        (3.0, 3.0, "step 3 of 3"),
    ]


def test_progress_is_called_on_the_hubs_loop(peers):
    async def main() -> None:
        seen: list[tuple] = []
        loop_thread = threading.get_ident()

        def on_progress(progress, total, message):
            seen.append((progress, threading.get_ident() == loop_thread))

        async with switchboard.Hub(kit_config(peers, ("--lifecycle", "modern"))) as hub:
            result = await hub.call(
                "kit__progress",
                {"count": 2, "delay_ms": 10},
                timeout=BOUND,
                on_progress=on_progress,
            )
            assert result.text == "done 2"
            await asyncio.sleep(0)  # callbacks scheduled before the result ran already
        assert seen == [(1.0, True), (2.0, True)]

    asyncio.run(main())
