"""switchboard.Hub / BlockingHub against real MCP servers over real transports."""

from __future__ import annotations

import asyncio
import builtins
import gc
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

import switchboard
from switchboard import errors

BOUND = 30.0  # keeps a broken build from hanging a test; never a timing goal


def kit_config(peers, *args: str) -> dict:
    return {"mcpServers": {"kit": peers.testkit_stdio(*args)}}


def counts(hub, name: str = "kit__counts") -> dict:
    return json.loads(hub.call(name).text)


def eventually(check, within: float = BOUND) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return False


# --- server-everything over its three transports ---------------------------------------


@pytest.mark.parametrize("transport", ["stdio", "sse", "streamableHttp"])
def test_server_everything_over_each_transport(peers, transport):
    if transport == "stdio":
        entry = peers.everything_stdio()
    else:
        base = peers.everything(transport)
        entry = {"url": base + ("/sse" if transport == "sse" else "/mcp")}
        if transport == "sse":
            entry["type"] = "sse"
    with switchboard.BlockingHub({"mcpServers": {"everything": entry}}) as hub:
        names = [tool["name"] for tool in hub.tools()]
        assert "everything__echo" in names
        result = hub.call("everything__echo", {"message": f"over {transport}"}, timeout=BOUND)
        assert not result.is_error
        assert f"over {transport}" in result.text
        # loosely typed names resolve when only one tool ends that way
        assert hub.tool("echo")["name"] == "everything__echo"
        assert hub.health()["overall"] == "healthy"


async def test_async_hub_over_server_everything(peers):
    base = peers.everything("streamableHttp")
    async with switchboard.Hub({"mcpServers": {"everything": {"url": base + "/mcp"}}}) as hub:
        results = await asyncio.gather(
            *(hub.call("everything__echo", {"message": f"m{i}"}) for i in range(8))
        )
        assert [r.text for r in results] == [f"Echo: m{i}" for i in range(8)]


# --- results ---------------------------------------------------------------------------


def test_call_result_keeps_every_block_and_structured_content(peers):
    with switchboard.BlockingHub(kit_config(peers)) as hub:
        mixed = hub.call("kit__mixed")
        kinds = [block["type"] for block in mixed.content]
        assert kinds[:3] == ["text", "text", "image"]
        assert mixed.text.splitlines()[:2] == ["first", "second"]
        structured = hub.call("kit__structured")
        assert structured.structured_content == {"temperature": 21.5, "unit": "C"}
        failed = hub.call("kit__fail", {"message": "nope"})
        assert failed.is_error and failed.text == "nope"
        assert failed.to_dict()["isError"] is True


def test_tool_formats(peers):
    with switchboard.BlockingHub(kit_config(peers)) as hub:
        rows = {t["name"]: t for t in hub.tools()}
        assert rows["kit__echo"]["server"] == "kit"
        openai = {t["function"]["name"]: t for t in hub.tools("openai")}
        assert openai["kit__echo"]["type"] == "function"
        assert "properties" in openai["kit__echo"]["function"]["parameters"]
        anthropic = {t["name"]: t for t in hub.tools("anthropic")}
        assert "input_schema" in anthropic["kit__echo"]
        responses = {t["name"]: t for t in hub.tools("openai-responses")}
        assert responses["kit__echo"]["type"] == "function"
        with pytest.raises(ValueError, match="unknown tool format"):
            hub.tools("yaml")


# --- errors ----------------------------------------------------------------------------


def test_errors_are_typed_and_carry_class_server_and_delivery(peers):
    with switchboard.BlockingHub(kit_config(peers)) as hub:
        with pytest.raises(errors.UnknownToolError) as unknown:
            hub.call("kit__nope")
        assert unknown.value.error_class == "unknown_tool"
        assert not unknown.value.may_have_run
        with pytest.raises(errors.InvalidArgumentsError) as invalid:
            hub.call("kit__add", {"a": "one"})
        assert invalid.value.server == "kit" and not invalid.value.may_have_run
        assert isinstance(invalid.value, ValueError)
        with pytest.raises(errors.TimeoutError) as timed_out:
            hub.call("kit__sleep", {"ms": 5000}, timeout=0.2)
        assert isinstance(timed_out.value, builtins.TimeoutError)
        assert timed_out.value.may_have_run and timed_out.value.server == "kit"
        assert timed_out.value.report["class"] == "timeout"
        # the connection is still good after the timeout
        assert hub.call("kit__echo", {"message": "after"}).text == "after"


def test_bad_config_names_the_key_and_loses_nothing(tmp_path: Path):
    with pytest.raises(errors.ConfigError) as bad:
        switchboard.BlockingHub('[servers.x]\ncommand = "true"\ntool_call_timout = "5s"\n')
    assert "tool_call_timout" in str(bad.value)
    assert "tool_call_timeout" in str(bad.value), "suggests the key meant"
    path = tmp_path / "servers.json"
    path.write_text('{"mcpServers": {"x": {"url": "ftp://example"}}}')
    with pytest.raises(errors.ConfigError) as bad_file:
        switchboard.load_config(str(path))
    assert "servers.json" in str(bad_file.value)


def test_an_unreachable_server_does_not_take_the_others_down(peers):
    port_with_nothing = "http://127.0.0.1:9/mcp"
    config = {"mcpServers": {"kit": peers.testkit_stdio(), "gone": {"url": port_with_nothing}}}
    with switchboard.BlockingHub(config) as hub:
        assert hub.call("kit__echo", {"message": "still here"}).text == "still here"
        health = hub.health()
        assert health["overall"] == "degraded"
        gone = next(s for s in health["servers"] if s["name"] == "gone")
        assert gone["last_error"]["class"] == "unreachable"


# --- parallel calls, the GIL, cancellation ---------------------------------------------


def test_32_threads_overlap_on_the_server(peers):
    """Blocking calls release the GIL: 32 threads' calls run at the same time on the server
    (every call started, by the server's clock, before any ended)."""
    with switchboard.BlockingHub(kit_config(peers)) as hub:
        start = threading.Barrier(32)
        runs: list[dict] = []

        def caller():
            start.wait()
            runs.append(hub.call("kit__sleep", {"ms": 1500}, timeout=BOUND).structured_content)

        threads = [threading.Thread(target=caller) for _ in range(32)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(BOUND)
        assert len(runs) == 32
        assert max(r["started_ms"] for r in runs) < min(r["ended_ms"] for r in runs)


async def test_asyncio_cancellation_reaches_the_server(peers):
    async with switchboard.Hub(kit_config(peers)) as hub:
        call = asyncio.create_task(hub.call("kit__hang"))
        for _ in range(int(BOUND / 0.02)):
            seen = json.loads((await hub.call("kit__counts")).text)
            if seen["executions"].get("hang") == 1:
                break
            await asyncio.sleep(0.02)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        for _ in range(int(BOUND / 0.02)):
            seen = json.loads((await hub.call("kit__counts")).text)
            if seen["cancelled"].get("hang") == 1:
                break
            await asyncio.sleep(0.02)
        assert seen["cancelled"].get("hang") == 1, seen


@pytest.fixture
def python_ctrl_c():
    """Python's own Ctrl-C handler, whatever the test runner inherited: a process started in
    the background by a non-interactive shell has SIGINT ignored, and Python keeps it so."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_interrupts_a_blocking_call_and_cancels_it(peers, python_ctrl_c):
    with switchboard.BlockingHub(kit_config(peers)) as hub:
        main = threading.get_ident()

        seen: list[str] = []

        def interrupt():
            try:
                started = eventually(lambda: counts(hub)["executions"].get("hang") == 1)
                seen.append(f"hang started: {started}")
            except BaseException as error:  # shown if the call is never interrupted
                seen.append(f"counts failed: {error!r}")
            signal.pthread_kill(main, signal.SIGINT)
            seen.append("SIGINT sent")

        threading.Thread(target=interrupt, daemon=True).start()
        try:
            outcome = repr(hub.call("kit__hang", timeout=BOUND))
        except KeyboardInterrupt:
            outcome = None
        except Exception as error:
            outcome = repr(error)
        if outcome is not None:
            pytest.fail(f"the call was not interrupted ({outcome}); interrupter: {seen}")
        assert eventually(lambda: counts(hub)["cancelled"].get("hang") == 1)


# --- sessions --------------------------------------------------------------------------


def test_session_variables_reach_only_their_own_upstream_session(peers):
    url = peers.testkit_http("streamable-http")
    config = f"""
[variables]
user = "nobody"   # for the connection that lists tools at start

[servers.kit]
url = "{url}"
session_mode = "per_session"
headers = {{ X-User = "${{user}}" }}
"""
    with switchboard.BlockingHub(config) as hub:
        alice = switchboard.Session("alice", {"user": "alice"})
        bob = switchboard.Session("bob", {"user": "bob"})

        def seen_by(session):
            headers = json.loads(hub.call("kit__echo_headers", session=session).text)
            return {k.lower(): v for k, v in headers.items()}

        assert seen_by(alice)["x-user"] == "alice"
        assert seen_by(bob)["x-user"] == "bob"
        assert seen_by(alice)["x-user"] == "alice"
        assert hub.session_count("kit") == 2
        assert "alice" not in repr(bob) and "bob" in repr(bob)
        time.sleep(0.2)
        assert hub.cleanup_sessions(0.1) == 2
        assert hub.session_count("kit") == 0


# --- closing ---------------------------------------------------------------------------


async def test_aclose_wakes_calls_in_flight_and_later_calls_fail_at_once(peers):
    hub = await switchboard.Hub.connect(kit_config(peers))
    calls = [asyncio.create_task(hub.call("kit__hang")) for _ in range(3)]
    await asyncio.sleep(0.3)
    await hub.aclose()
    for call in calls:
        with pytest.raises(errors.ClosedError) as closed:
            await call
        assert closed.value.may_have_run
    with pytest.raises(errors.ClosedError) as after:
        await hub.call("kit__echo", {"message": "late"})
    assert not after.value.may_have_run
    await hub.aclose()  # twice is harmless


def _live_children(name: str) -> list[int]:
    """Our child processes running `name` that have not exited (zombies excluded)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        state, ppid = stat[stat.rindex(")") + 2 :].split()[:2]
        if int(ppid) == os.getpid() and comm.startswith(name) and state != "Z":
            found.append(int(entry.name))
    return found


def test_garbage_collected_hub_leaves_no_child_process(peers):
    hub = switchboard.BlockingHub(kit_config(peers))
    assert hub.call("kit__echo", {"message": "x"}).text == "x"
    assert len(_live_children("switchboard-tes")) == 1
    del hub
    gc.collect()
    assert eventually(lambda: not _live_children("switchboard-tes"), within=10)
