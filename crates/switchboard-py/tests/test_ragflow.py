"""`switchboard.ragflow` against real servers: RAGFlow's `test_mcp_tool_call_conn.py` rules
that apply to an engine-backed session (no thread or event loop of its own), plus the
deliberate differences (headers, every text block, parallel calls, reconnects).

Time bounds here only stop a broken implementation from hanging the suite; behaviour is
asserted on what the calls return and on what the server saw.
"""

from __future__ import annotations

import asyncio
import gc
import json
import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest

from switchboard import ragflow
from switchboard.ragflow import (
    MCPToolCallSession,
    Tool,
    close_multiple_mcp_toolcall_sessions,
    mcp_tool_metadata_to_openai_tool,
    shutdown_all_mcp_sessions,
)

TRANSPORTS = ["streamable-http", "sse"]
#: Enough for anything here to finish on a loaded machine; a hang fails instead.
BOUND = 20.0


@pytest.fixture
def open_session():
    """Makes sessions (`mcp_server` as a dict) and closes them after the test."""
    made: list[MCPToolCallSession] = []

    def open_session(url, server_type, *, id="srv-1", headers=None, **kwargs):
        server = {"id": id, "url": url, "server_type": server_type, "headers": headers or {}}
        session = MCPToolCallSession(server, **kwargs)
        made.append(session)
        return session

    yield open_session
    close_multiple_mcp_toolcall_sessions(made)


def in_thread(function, *args, **kwargs):
    """Runs `function` in a thread; returns (thread, list that gets its result)."""
    out: list = []
    thread = threading.Thread(target=lambda: out.append(function(*args, **kwargs)))
    thread.start()
    return thread, out


def wait_until(predicate, what):
    deadline = time.monotonic() + BOUND
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def counts(session) -> dict:
    return json.loads(session.tool_call("counts", {}))


def messages(caplog) -> list[str]:
    """What `switchboard.ragflow` logged (not the engine's own lines)."""
    return [r.getMessage() for r in caplog.records if r.name == "switchboard.ragflow"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- calls and tools -------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_tools_and_calls_over_the_testkit(peers, open_session, transport):
    session = open_session(peers.testkit_http(transport), transport)

    tools = {tool.name: tool for tool in session.get_tools()}
    assert {"echo", "sleep", "hang", "mixed", "echo_headers"} <= set(tools)
    echo = tools["echo"]
    assert isinstance(echo, Tool)
    assert echo.inputSchema["properties"]["message"]["type"] == "string"
    assert echo.model_dump() == {
        "name": "echo",
        "description": echo.description,
        "inputSchema": echo.inputSchema,
    }
    assert session.tool_call("echo", {"message": "hi"}) == "hi"


@pytest.mark.parametrize("mode, path", [("sse", "/sse"), ("streamableHttp", "/mcp")])
def test_get_tools_from_server_everything(peers, open_session, mode, path):
    server_type = "sse" if mode == "sse" else "streamable-http"
    session = open_session(peers.everything(mode) + path, server_type)

    assert "echo" in [tool.name for tool in session.get_tools(timeout=BOUND)]
    assert "hello from ragflow" in session.tool_call(
        "echo", {"message": "hello from ragflow"}, timeout=BOUND
    )


def test_every_text_block_is_returned(peers, open_session):
    # RAGFlow returned only the first text block.
    session = open_session(peers.testkit_http(), "streamable-http")

    assert session.tool_call("mixed", {}) == "first\nsecond"


def test_tool_errors_and_unknown_tools_are_strings(peers, open_session):
    session = open_session(peers.testkit_http(), "streamable-http")

    failed = session.tool_call("fail", {"message": "broken on purpose"})
    assert failed == "MCP server error: [{'text': 'broken on purpose', 'type': 'text'}]"
    unknown = session.tool_call("no_such_tool", {})
    assert unknown.startswith("Error calling tool 'no_such_tool': ")
    assert unknown.endswith(".")


def test_unsupported_server_type_is_reported_by_calls(open_session):
    session = open_session("http://127.0.0.1:9/", "stdio", id="odd")

    assert session.tool_call("echo", {}) == (
        "Error calling tool 'echo': Unsupported MCP server type: stdio, id: odd."
    )
    with pytest.raises(ValueError, match="Unsupported MCP server type: stdio, id: odd"):
        session.get_tools()


# -- timeouts --------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_timeout_string_and_the_next_call_succeeds(peers, open_session, transport):
    session = open_session(peers.testkit_http(transport), transport)

    assert (
        session.tool_call("sleep", {"ms": 2000}, timeout=0.5)
        == "Timeout calling tool 'sleep' (timeout=0.5)."
    )
    assert session.tool_call("echo", {"message": "after"}) == "after"
    # The timed-out request was cancelled at the server.
    wait_until(lambda: counts(session)["cancelled"].get("sleep") == 1, "the cancellation")


def test_server_down_at_construction_gives_strings_then_recovers(peers, open_session):
    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    session = open_session(url, "streamable-http", id="later")  # does not raise

    started = time.monotonic()
    result = session.tool_call("echo", {"message": "x"}, timeout=0.5)
    assert result.startswith("Error calling tool 'echo': ")
    assert "unreachable" in result
    with pytest.raises(RuntimeError) as raised:
        session.get_tools(timeout=0.5)
    assert str(raised.value) == (
        "Timeout when fetching tools from MCP server: later (timeout=0.5)"
    )
    assert time.monotonic() - started < BOUND

    # Not RAGFlow's permanent error mode: the engine retries and the server joins.
    assert peers.testkit_http("streamable-http", port=port) == url
    assert "echo" in [tool.name for tool in session.get_tools(timeout=BOUND)]
    assert session.tool_call("echo", {"message": "back"}) == "back"


# -- closing ---------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_close_sync_wakes_a_call_in_flight(peers, open_session, transport):
    session = open_session(peers.testkit_http(transport), transport)
    thread, out = in_thread(session.tool_call, "hang", {}, timeout=60)
    wait_until(lambda: counts(session)["executions"].get("hang") == 1, "the call to start")

    session.close_sync()
    thread.join(BOUND)

    assert not thread.is_alive()
    assert "Session is closing" in out[0]
    assert "Timeout" not in out[0]


def test_get_tools_waiting_for_the_server_is_woken_by_close(open_session):
    session = open_session(f"http://127.0.0.1:{free_port()}/mcp", "streamable-http")

    def get_tools():
        try:
            return session.get_tools(timeout=60)
        except ValueError as error:
            return error

    waiting = threading.Event()
    ready = session._ready

    def spy(deadline):
        waiting.set()
        return ready(deadline)

    session._ready = spy
    thread, out = in_thread(get_tools)
    assert waiting.wait(BOUND)
    session.close_sync()
    thread.join(BOUND)

    assert not thread.is_alive()
    assert isinstance(out[0], ValueError) and str(out[0]) == "Session is closing"


def test_async_close_wakes_a_call_in_flight(peers, open_session):
    session = open_session(peers.testkit_http(), "streamable-http")
    thread, out = in_thread(session.tool_call, "hang", {}, timeout=60)
    wait_until(lambda: counts(session)["executions"].get("hang") == 1, "the call to start")

    asyncio.run(session.close())
    thread.join(BOUND)

    assert "Session is closing" in out[0]
    assert session not in MCPToolCallSession._active_instances()


def test_calls_after_close_fail_at_once_and_closing_twice_is_harmless(peers, open_session):
    session = open_session(peers.testkit_http(), "streamable-http")
    session.close_sync()
    session.close_sync()
    asyncio.run(session.close())

    assert session.tool_call("echo", {"message": "x"}) == "Error: Session is closed"
    with pytest.raises(ValueError, match="^Session is closed$"):
        session.get_tools()


def test_three_concurrent_close_sync_calls(peers, open_session):
    session = open_session(peers.testkit_http(), "streamable-http")
    barrier = threading.Barrier(3)

    def close():
        barrier.wait()
        session.close_sync()

    with ThreadPoolExecutor(3) as pool:
        for future in [pool.submit(close) for _ in range(3)]:
            future.result(BOUND)

    assert session._shutdown_complete.is_set()
    assert session not in MCPToolCallSession._active_instances()
    assert session.tool_call("echo", {"message": "x"}) == "Error: Session is closed"


def test_close_multiple_dedupes_and_skips_none(peers, caplog):
    url = peers.testkit_http()
    a = MCPToolCallSession({"id": "a", "url": url, "server_type": "streamable-http"})
    b = MCPToolCallSession({"id": "b", "url": url, "server_type": "streamable-http"})
    closes = []

    def counted(session):
        close_sync = session.close_sync

        def close(timeout=5):
            closes.append(session)
            close_sync(timeout)

        session.close_sync = close

    counted(a)
    counted(b)

    with caplog.at_level("INFO", logger="switchboard.ragflow"):
        assert close_multiple_mcp_toolcall_sessions([a, None, a, b]) == 0

    assert sorted(s._server_id for s in closes) == ["a", "b"]
    assert a.tool_call("echo", {}) == b.tool_call("echo", {}) == "Error: Session is closed"
    assert "Want to clean up 2 MCP sessions" in messages(caplog)
    assert any(
        re.fullmatch(r"2 MCP sessions have been cleaned up\. \d+ in global context\.", m)
        for m in messages(caplog)
    )


def test_shutdown_all_logs(peers, caplog):
    gc.collect()
    shutdown_all_mcp_sessions()  # whatever earlier tests left open
    caplog.clear()
    with caplog.at_level("INFO", logger="switchboard.ragflow"):
        shutdown_all_mcp_sessions()
    assert messages(caplog) == ["No MCPToolCallSession instances to close."]

    url = peers.testkit_http()
    sessions = [
        MCPToolCallSession({"id": name, "url": url, "server_type": "streamable-http"})
        for name in ("one", "two")
    ]
    caplog.clear()
    with caplog.at_level("INFO", logger="switchboard.ragflow"):
        shutdown_all_mcp_sessions()
    assert "Shutting down 2 MCPToolCallSession instances..." in messages(caplog)
    assert messages(caplog)[-1] == "All MCPToolCallSession instances have been closed."
    assert all(s.tool_call("echo", {}) == "Error: Session is closed" for s in sessions)


def test_shutdown_all_reports_cleanup_errors(peers, caplog):
    gc.collect()
    shutdown_all_mcp_sessions()
    session = MCPToolCallSession(
        {"id": "server-1", "url": peers.testkit_http(), "server_type": "streamable-http"}
    )
    close_sync = session.close_sync

    def failing_close_sync():
        close_sync()
        raise RuntimeError("transport cleanup failed")

    session.close_sync = failing_close_sync
    caplog.clear()
    with caplog.at_level("INFO", logger="switchboard.ragflow"):
        shutdown_all_mcp_sessions()

    assert messages(caplog).count("Exception while closing MCP session for server server-1") == 1
    assert any(
        m.startswith("1 MCP sessions stopped; transport cleanup failure count: 1.")
        for m in messages(caplog)
    )
    assert not any("have been cleaned up" in m for m in messages(caplog))
    assert messages(caplog)[-1] == (
        "All MCPToolCallSession event loops stopped; transport cleanup failure count: 1."
    )


# -- parallel calls --------------------------------------------------------------------------


def test_parallel_tool_calls_overlap_at_the_server(peers, open_session, monkeypatch):
    # RAGFlow ran one call at a time per session; here 8 threads' calls all run at once,
    # by the server's own clock.
    session = open_session(peers.testkit_http(), "streamable-http")
    ran: list[dict] = []
    result_text = ragflow._result_text

    def recording(result):
        ran.append(result.structured_content)
        return result_text(result)

    monkeypatch.setattr(ragflow, "_result_text", recording)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: session.tool_call("sleep", {"ms": 1000}), range(8)))

    assert results == ["slept 1000 ms"] * 8
    assert len(ran) == 8
    assert max(r["started_ms"] for r in ran) < min(r["ended_ms"] for r in ran)


# -- headers ---------------------------------------------------------------------------------


def sent_headers(session) -> dict:
    return json.loads(session.tool_call("echo_headers", {}))


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_pr_17846_headers(peers, open_session, transport):
    # Only an empty or exactly "Bearer" value is dropped (RAGFlow's strip("Bearer") also
    # dropped "Bear" and "rare").
    headers = {"X-Api-Key": "Bear", "X-Environment": "Bearer", "Authorization": "Bearer "}
    session = open_session(peers.testkit_http(transport), transport, headers=headers)

    sent = sent_headers(session)
    assert sent["x-api-key"] == "Bear"
    assert "x-environment" not in sent
    assert "authorization" not in sent


def test_header_templating_like_string_template(peers, open_session):
    headers = {
        "Authorization": "Bearer ${authorization_token}",
        "X-Plain": "$user",
        "X-Dollars": "cost $$5, $ 3 and 100$",
        "X-Unknown": "keep ${missing} and $missing",
        "X-Number": "${count}",
        "X-${suffix}": "templated key",
        "X-Rare": "rare",
        "X-Empty": "${empty}",
        " ": "blank key",
    }
    variables = {
        "authorization_token": "tok$en",
        "user": "ann",
        "count": 3,
        "suffix": "Tenant",
        "empty": "",
    }
    session = open_session(
        peers.testkit_http(), "streamable-http", headers=headers, server_variables=variables
    )

    sent = sent_headers(session)
    assert sent["authorization"] == "Bearer tok$en"  # substituted values are not rescanned
    assert sent["x-plain"] == "ann"
    assert sent["x-dollars"] == "cost $5, $ 3 and 100$"
    assert sent["x-unknown"] == "keep ${missing} and $missing"
    assert sent["x-number"] == "3"
    assert sent["x-tenant"] == "templated key"
    assert sent["x-rare"] == "rare"
    assert "x-empty" not in sent


def test_missing_token_drops_the_authorization_header(peers, open_session):
    session = open_session(
        peers.testkit_http(),
        "streamable-http",
        headers={"Authorization": "Bearer ${authorization_token}"},
        server_variables={"authorization_token": ""},
    )

    assert "authorization" not in sent_headers(session)


def test_custom_headers_win_and_template_against_themselves(peers, open_session):
    session = open_session(
        peers.testkit_http(),
        "streamable-http",
        headers={"X-Tenant": "from-server", "X-Server": "$who"},
        server_variables={"who": "server-var", "tenant": "server-var"},
        custom_header={"X-Tenant": "${tenant}", "tenant": "custom", "X-Who": "$who"},
    )

    sent = sent_headers(session)
    assert sent["x-tenant"] == "custom"  # templated against the custom dict, and wins
    assert sent["x-server"] == "server-var"
    assert sent["x-who"] == "$who"  # server_variables do not apply to custom headers


def test_non_dict_custom_header_raises_at_construction():
    server = {"id": "x", "url": "http://127.0.0.1:9/mcp", "server_type": "streamable-http"}
    with pytest.raises(TypeError, match="custom_header must be a dict"):
        MCPToolCallSession(server, custom_header=[("X-A", "b")])


def test_empty_custom_header_is_accepted(peers, open_session):
    # The agent API's default for custom_header is "".
    session = open_session(peers.testkit_http(), "streamable-http", custom_header="")

    assert session.tool_call("echo", {"message": "ok"}) == "ok"


# -- OpenAI tool dicts -----------------------------------------------------------------------


def test_mcp_tool_metadata_to_openai_tool(peers, open_session):
    session = open_session(peers.testkit_http(), "streamable-http")
    echo = next(tool for tool in session.get_tools() if tool.name == "echo")
    expected = {
        "type": "function",
        "function": {
            "name": "echo",
            "description": echo.description,
            "parameters": echo.inputSchema,
        },
    }

    assert mcp_tool_metadata_to_openai_tool(echo) == expected
    assert mcp_tool_metadata_to_openai_tool(echo.model_dump()) == expected
    renamed = mcp_tool_metadata_to_openai_tool(echo, function_name="echo_3")
    assert renamed["function"]["name"] == "echo_3"

    bare = {"name": "t", "description": None, "inputSchema": {"type": "object", "x-any": 1}}
    assert mcp_tool_metadata_to_openai_tool(bare)["function"] == {
        "name": "t",
        "description": None,
        "parameters": {"type": "object", "x-any": 1},
    }
    with pytest.raises(KeyError):
        mcp_tool_metadata_to_openai_tool({"name": "t", "inputSchema": {}})


def test_results_without_text_blocks():
    # The mapping of results no testkit tool returns (RAGFlow: "Unsupported content type").
    def result(content, structured=None):
        return SimpleNamespace(
            content=content, structured_content=structured, is_error=False, text=""
        )

    assert ragflow._result_text(result([])) == "MCP server returned empty content."
    assert ragflow._result_text(result([], {"t": 21.5})) == '{"t": 21.5}'
    blocks = [
        {"type": "image", "data": "iVBO", "mimeType": "image/png"},
        {"type": "resource_link", "uri": "file:///a.txt", "name": "a.txt"},
        {"type": "resource", "resource": {"uri": "file:///b.txt", "text": "inline text"}},
        {"type": "resource", "resource": {"uri": "file:///c.bin", "blob": "AAAA"}},
    ]
    assert ragflow._result_text(result(blocks)) == (
        "[image: image/png]\n[resource_link: file:///a.txt]\ninline text\n[resource: file:///c.bin]"
    )
