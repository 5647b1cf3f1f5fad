"""A drop-in for RAGFlow's ``common/mcp_tool_call_conn.py``, served by the Switchboard engine.

Change the import and keep the rest::

    from switchboard.ragflow import MCPToolCallSession, close_multiple_mcp_toolcall_sessions

The names, signatures, defaults and the strings callers see are RAGFlow's:
``tool_call`` returns ``"Error: Session is closed"``, ``"Timeout calling tool '{name}'
(timeout={t})."``, ``"Error calling tool '{name}': {e}."``, ``"MCP server error: {content}"``
or ``"MCP server returned empty content."``; ``get_tools`` raises ``ValueError("Session is
closed")`` and ``RuntimeError("Timeout when fetching tools from MCP server: {id}
(timeout={t})")``; a call woken by ``close`` says ``"Session is closing"``; the shutdown
helpers log RAGFlow's messages.

How it works: each session is one engine hub with one server (its URL, transport and
headers from ``mcp_server``) on the package's single engine runtime. The engine connects
and lists the server's tools in the constructor (connect within 5 s, like RAGFlow's
``initialize`` timeout). Tool names are the server's own (``[catalog] prefix = "never"``;
a name the catalogue had to make provider-safe is mapped back, so callers always pass the
original).

Deliberate differences from RAGFlow:

- **Headers**: templated like RAGFlow (``string.Template.safe_substitute`` on keys and
  values of the server's headers with ``server_variables``; custom headers against the
  custom header dict itself, applied after and winning on an identical key), but a header
  is dropped only when its key is blank or its value is empty or exactly ``Bearer`` after
  stripping; RAGFlow's ``strip("Bearer")`` also dropped ``"rare"``, ``"Bear"`` or
  ``"ear"``. Headers whose name is not a valid HTTP token are dropped with a warning. A
  non-dict ``custom_header`` raises ``TypeError`` in the constructor (RAGFlow's server
  task died of it and every call then timed out).
- **Every text block**: ``tool_call`` joins all text blocks with newlines (RAGFlow returned
  only the first). A result without text blocks gives its ``structuredContent`` as JSON if
  it has some, else one line per block naming what it is (``[image: image/png]``,
  ``[resource: uri]``, an embedded resource's text); RAGFlow answered
  ``"Unsupported content type <class 'list'>"``.
- **Parallel calls**: calls from many threads run at once over the one connection, each
  with one absolute deadline (``timeout``) that covers waiting for the server as well;
  RAGFlow ran them one at a time from a queue, so queued calls expired.
- **Reconnects instead of error mode**: a server that is down at construction (or whose
  connection breaks later) does not make the constructor raise and does not put the
  session into a permanent error mode with RAGFlow's "Connection failed (possibly due to
  auth error)" message. The engine keeps retrying in the background (backoff from 0.5 s
  up to 5 s) and the server joins as soon as it answers. Until then a call waits for it
  within its own deadline and then returns ``"Error calling tool '{name}': {why}."`` with
  the engine's actual reason (connection refused, HTTP 401, ...); ``get_tools`` waits the
  same way and then raises its timeout ``RuntimeError`` (the reason is its
  ``__cause__``). A server that rejected our credentials is not retried: both fail at once
  with the engine's :class:`~switchboard.errors.AuthError` message.
- **What get_tools returns**: the tools the engine listed when it connected (kept up to
  date on ``notifications/tools/list_changed``), not a fresh ``tools/list`` per call; as
  :class:`Tool` objects (``name``, ``title``, ``description``, ``inputSchema``,
  ``outputSchema``, ``annotations``, ``model_dump()``) rather than ``mcp.types.Tool``, so
  the ``mcp`` package is not needed. ``description`` is the engine's (a server that gives
  none gets one naming the tool).
- **No thread, no event loop per session**: closing needs no thread join; ``close_sync``
  waits at most ``timeout`` and then drops what has not closed (it does not continue in
  the background). Closing never raises: the engine logs transport cleanup failures. A
  session that is garbage-collected without ``close`` still closes its connection.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import logging
import re
import threading
import time
import weakref
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from string import Template
from typing import Any, Optional, Protocol, Union

from . import _switchboard
from ._hub import load_config
from .errors import AuthError, SwitchboardError, UnreachableError, _from_report

__all__ = [
    "MCPToolBinding",
    "MCPToolCallSession",
    "Tool",
    "ToolCallSession",
    "close_multiple_mcp_toolcall_sessions",
    "mcp_tool_metadata_to_openai_tool",
    "shutdown_all_mcp_sessions",
]

logger = logging.getLogger(__name__)

#: RAGFlow's ``MCPServerType`` values and the engine's transport names.
TRANSPORTS = {"sse": "sse", "streamable-http": "streamable-http"}

#: How often a caller waiting for the server (or for another closer) looks again (seconds).
POLL_INTERVAL = 0.05

#: How long the async :meth:`MCPToolCallSession.close` lets the connection close (seconds).
CLOSE_TIMEOUT = 5.0

#: What a call woken by ``close`` reports (RAGFlow's wording).
CLOSING = "Session is closing"

_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_ANNOTATION_HINTS = {
    "read_only": "readOnlyHint",
    "destructive": "destructiveHint",
    "idempotent": "idempotentHint",
    "open_world": "openWorldHint",
}


class ToolCallSession(Protocol):
    """RAGFlow's protocol for what an agent calls tools through."""

    def tool_call(self, name: str, arguments: dict[str, Any], timeout: float | int = 10) -> str: ...


@dataclass(frozen=True)
class MCPToolBinding:
    """RAGFlow's pairing of a session and the tool's original name (agent tools)."""

    session: ToolCallSession
    original_name: str


@dataclass(frozen=True)
class Tool:
    """One MCP tool, with the attribute names of ``mcp.types.Tool``."""

    name: str
    description: Optional[str]
    inputSchema: dict[str, Any]
    title: Optional[str] = None
    outputSchema: Optional[dict[str, Any]] = None
    #: MCP's ``ToolAnnotations`` (``title``, ``readOnlyHint``, ...), as the server gave them.
    annotations: Optional[dict[str, Any]] = None

    def model_dump(self) -> dict[str, Any]:
        """The tool as MCP's JSON (``name``, ``description``, ``inputSchema``, and the
        optional fields that are set)."""
        return {
            key: value
            for key, value in asdict(self).items()
            if value is not None or key == "description"
        }


class _Closing(ValueError):
    """A call woken (or refused) because the session began to close."""

    def __init__(self) -> None:
        super().__init__(CLOSING)


class _NotConnected(Exception):
    """The server did not come up before the deadline; ``why`` is its last error."""

    def __init__(self, why: SwitchboardError) -> None:
        super().__init__(str(why))
        self.why = why


class MCPToolCallSession(ToolCallSession):
    """One MCP server (``sse`` or ``streamable-http``) for a RAGFlow agent or REST call.

    ``mcp_server`` is an object or a dict with ``id``, ``url``, ``server_type`` and
    ``headers`` (RAGFlow's ``MCPServer``; other fields are not read, and the engine names
    the server after ``id``). ``server_variables`` fill the ``$name`` / ``${name}``
    placeholders of its headers (RAGFlow passes ``mcp_server.variables``);
    ``custom_header`` (a dict) adds headers that win over the server's. See the module docs
    for what differs from RAGFlow.
    """

    _ALL_INSTANCES: "weakref.WeakSet[MCPToolCallSession]" = weakref.WeakSet()
    _INSTANCES_LOCK = threading.Lock()

    def __init__(
        self,
        mcp_server: Any,
        server_variables: Optional[dict[str, Any]] = None,
        custom_header: Optional[dict[str, Any]] = None,
    ) -> None:
        if custom_header and not isinstance(custom_header, dict):
            raise TypeError(
                f"custom_header must be a dict, not {type(custom_header).__name__}"
            )
        self._mcp_server = mcp_server
        self._server_variables = server_variables or {}
        self._custom_header = custom_header or {}
        self._server_id = str(_field(mcp_server, "id"))
        self._name = re.sub(r"[^A-Za-z0-9_-]", "_", self._server_id) or "server"
        self._close = False
        self._close_lock = threading.Lock()
        self._shutdown_complete = threading.Event()
        #: Original tool name -> exposed name (they differ only for names made safe).
        self._exposed: dict[str, str] = {}
        #: Why this session can never work (RAGFlow's error mode), or None.
        self._error: Optional[str] = None
        self._core: Optional[_switchboard.HubCore] = None
        try:
            self._core = _switchboard.HubCore.start_blocking(self._config())
        except (ValueError, SwitchboardError) as error:
            # An unsupported server type or an unusable URL: every call says why.
            self._error = str(error)
            logger.error("MCP server %s cannot be used: %s", self._server_id, error)
        with MCPToolCallSession._INSTANCES_LOCK:
            MCPToolCallSession._ALL_INSTANCES.add(self)

    @classmethod
    def _active_instances(cls) -> list["MCPToolCallSession"]:
        with cls._INSTANCES_LOCK:
            return list(cls._ALL_INSTANCES)

    def _config(self) -> _switchboard.Config:
        """The engine config: this one server, tools under their own names, skipped (and
        retried in the background) when it is down."""
        server_type = _field(self._mcp_server, "server_type")
        server_type = getattr(server_type, "value", server_type)
        transport = TRANSPORTS.get(server_type)
        if transport is None:
            raise ValueError(
                f"Unsupported MCP server type: {server_type}, id: {self._server_id}"
            )
        url = str(_field(self._mcp_server, "url") or "").strip()
        headers = _headers(
            _field(self._mcp_server, "headers") or {},
            self._server_variables,
            self._custom_header,
        )
        lines = [
            'on_server_registration_error = "skip_with_warning"',
            "retry_skipped_servers = true",
            "[catalog]",
            'prefix = "never"',
            f"[servers.{self._name}]",
            f"transport = {_toml(transport)}",
            f"url = {_toml(url)}",
            'connect_timeout = "5s"',
            'list_timeout = "10s"',
            'reconnect = { initial_backoff = "500ms", max_backoff = "5s" }',
            f"[servers.{self._name}.headers]",
            # The engine templates `$x` in header values too: ours are final, so `$` is `$$`.
            *(f"{_toml(k)} = {_toml(v.replace('$', '$$'))}" for k, v in headers.items()),
        ]
        return load_config("\n".join(lines) + "\n")

    # -- calls ------------------------------------------------------------------------------

    def get_tools(self, timeout: float | int = 10) -> list[Tool]:
        """The server's tools. Waits at most ``timeout`` seconds for a server that is not
        connected yet (see the module docs)."""
        deadline = time.monotonic() + timeout
        if self._close:
            raise ValueError("Session is closed")
        try:
            core = self._ready(deadline)
        except _NotConnected as error:
            msg = (
                "Timeout when fetching tools from MCP server: "
                f"{self._server_id} (timeout={timeout})"
            )
            logger.error("%s: %s", msg, error.why)
            raise RuntimeError(msg) from error.why
        except Exception as error:
            logger.error("Error fetching tools from MCP server %s: %s", self._server_id, error)
            raise
        return [_tool(row) for row in core.tools() if row["server"] == self._name]

    def tool_call(self, name: str, arguments: dict[str, Any], timeout: float | int = 10) -> str:
        """Calls the tool ``name`` (the server's own name); the result or a message, never
        an exception. ``timeout`` is one deadline for the whole call."""
        deadline = time.monotonic() + timeout
        if self._close:
            return "Error: Session is closed"
        try:
            core, exposed = self._resolve(name, deadline)
            result = core.call_blocking(
                exposed,
                _arguments(arguments),
                None,
                max(0.0, deadline - time.monotonic()),
            )
        except Exception as error:
            return self._call_failed(name, timeout, error)
        return _result_text(result)

    def _call_failed(self, name: str, timeout: float | int, error: Exception) -> str:
        if self._close:
            error = _Closing()
        elif isinstance(error, _NotConnected):
            error = error.why
        elif isinstance(error, builtins.TimeoutError):
            logger.error(
                "Timeout calling tool '%s' on MCP server: %s (timeout=%s)",
                name,
                self._server_id,
                timeout,
            )
            return f"Timeout calling tool '{name}' (timeout={timeout})."
        logger.error("Error calling tool '%s' on MCP server %s: %s", name, self._server_id, error)
        return f"Error calling tool '{name}': {error}."

    def _ready(self, deadline: float) -> _switchboard.HubCore:
        """The hub, once the server's tools are in its catalogue. Raises ``_Closing`` when
        the session begins to close, the server's error when it will not come up by itself
        (needs auth, unusable), and ``_NotConnected`` when ``deadline`` passes first."""
        while True:
            if self._close:
                raise _Closing()
            if self._core is None:
                raise ValueError(self._error)
            server = next(
                (s for s in self._core.health()["servers"] if s["name"] == self._name), None
            )
            if server is None or server["state"] == "ready" or server["tools"]:
                return self._core
            why = _server_error(server)
            if server["state"] != "retrying":
                raise why
            left = deadline - time.monotonic()
            if left <= 0:
                raise _NotConnected(why)
            time.sleep(min(POLL_INTERVAL, left))

    def _resolve(self, name: str, deadline: float) -> tuple[_switchboard.HubCore, str]:
        """The hub and the exposed name of the server's tool ``name``. A name seen before
        goes straight to the engine (which waits for a lost connection within the call's
        deadline); any other waits for the server to be registered first."""
        exposed = self._exposed.get(name)
        if exposed is not None and self._core is not None:
            return self._core, exposed
        core = self._ready(deadline)
        self._exposed = {row["tool"]: row["name"] for row in core.tools()}
        return core, self._exposed.get(name, name)

    # -- closing ----------------------------------------------------------------------------

    def _begin_close(self) -> bool:
        """Marks the session closed; True for the one caller that closes it."""
        with self._close_lock:
            first = not self._close
            self._close = True
            return first

    def _closed(self) -> None:
        with MCPToolCallSession._INSTANCES_LOCK:
            MCPToolCallSession._ALL_INSTANCES.discard(self)
        self._shutdown_complete.set()

    async def close(self) -> None:
        """Closes the session (asyncio): calls in flight are woken with "Session is
        closing", later calls fail at once. Idempotent."""
        if self._begin_close():
            try:
                if self._core is not None:
                    await asyncio.shield(self._core.close_async(CLOSE_TIMEOUT))
            finally:
                self._closed()
        else:
            while not self._shutdown_complete.is_set():
                await asyncio.sleep(POLL_INTERVAL)

    def close_sync(self, timeout: float | int = 5) -> None:
        """:meth:`close`, blocking at most ``timeout`` seconds. Any number of threads may
        call it at once; one closes, the others wait for it."""
        if self._begin_close():
            try:
                if self._core is not None:
                    self._core.close_blocking(float(timeout))
            finally:
                self._closed()
        elif not self._shutdown_complete.wait(timeout):
            logger.error(
                "Timeout while closing session for server %s (timeout=%s)",
                self._server_id,
                timeout,
            )


def close_multiple_mcp_toolcall_sessions(sessions: list[MCPToolCallSession]) -> int:
    """Closes ``sessions`` in parallel (each once; ``None`` skipped); returns how many
    failed to close."""
    unique = list({id(s): s for s in sessions if s is not None}.values())
    logger.info("Want to clean up %s MCP sessions", len(unique))
    cleanup_errors = 0
    if unique:
        with ThreadPoolExecutor(max_workers=min(32, len(unique))) as pool:
            futures = {pool.submit(session.close_sync): session for session in unique}
            for future, session in futures.items():
                try:
                    future.result()
                except Exception:
                    cleanup_errors += 1
                    logger.exception(
                        "Exception while closing MCP session for server %s",
                        _field(session._mcp_server, "id"),
                    )
    closed = sum(session._shutdown_complete.is_set() for session in unique)
    if closed != len(unique):
        logger.warning(
            "%s of %s MCP sessions are still shutting down", len(unique) - closed, len(unique)
        )
    active = len(MCPToolCallSession._active_instances())
    if cleanup_errors:
        logger.warning(
            "%s MCP sessions stopped; transport cleanup failure count: %s. %s in global context.",
            closed,
            cleanup_errors,
            active,
        )
    else:
        logger.info("%s MCP sessions have been cleaned up. %s in global context.", closed, active)
    return cleanup_errors


def shutdown_all_mcp_sessions() -> None:
    """Closes every session that is still open (RAGFlow calls it on SIGINT/SIGTERM)."""
    sessions = MCPToolCallSession._active_instances()
    if not sessions:
        logger.info("No MCPToolCallSession instances to close.")
        return
    logger.info("Shutting down %s MCPToolCallSession instances...", len(sessions))
    cleanup_errors = close_multiple_mcp_toolcall_sessions(sessions)
    still_active = MCPToolCallSession._active_instances()
    if still_active:
        logger.warning(
            "%s MCPToolCallSession instances are still shutting down.", len(still_active)
        )
    elif cleanup_errors:
        logger.warning(
            "All MCPToolCallSession event loops stopped; transport cleanup failure count: %s.",
            cleanup_errors,
        )
    else:
        logger.info("All MCPToolCallSession instances have been closed.")


def mcp_tool_metadata_to_openai_tool(
    mcp_tool: Union[Tool, Mapping[str, Any], Any], function_name: Optional[str] = None
) -> dict[str, Any]:
    """An OpenAI function tool for an MCP tool (an object with ``name``, ``description``,
    ``inputSchema``, or a dict with those keys); the schema is passed through as it is."""
    if isinstance(mcp_tool, Mapping):
        name, description, schema = (
            mcp_tool["name"],
            mcp_tool["description"],
            mcp_tool["inputSchema"],
        )
    else:
        name, description, schema = mcp_tool.name, mcp_tool.description, mcp_tool.inputSchema
    return {
        "type": "function",
        "function": {
            "name": function_name or name,
            "description": description,
            "parameters": schema,
        },
    }


# -- helpers ---------------------------------------------------------------------------------


def _field(server: Any, name: str, default: Any = None) -> Any:
    """``server.name`` or ``server[name]``: RAGFlow passes model objects, tests dicts."""
    if isinstance(server, Mapping):
        return server.get(name, default)
    return getattr(server, name, default)


def _headers(
    raw: Mapping[Any, Any], variables: Mapping[str, Any], custom: Mapping[Any, Any]
) -> dict[str, str]:
    """RAGFlow's header templating, without its ``strip("Bearer")`` bug (module docs)."""
    headers: dict[str, str] = {}
    for key, value in raw.items():
        key = Template(str(key)).safe_substitute(variables)
        value = Template(str(value)).safe_substitute(variables)
        if key.strip() and value.strip() not in ("", "Bearer"):
            headers[key] = value
    for key, value in custom.items():
        key = Template(str(key)).safe_substitute(custom)
        headers[key] = Template(str(value)).safe_substitute(custom)
    for key in [k for k in headers if not _HEADER_NAME.match(k)]:
        logger.warning("dropping header %r: not a valid HTTP header name", key)
        del headers[key]
    return headers


def _toml(text: str) -> str:
    """``text`` as a TOML basic string (JSON's escapes are TOML's, except DEL)."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _arguments(arguments: Optional[Mapping[str, Any]]) -> Optional[dict[str, Any]]:
    if arguments is None or isinstance(arguments, dict):
        return arguments
    return dict(arguments)


def _server_error(server: Mapping[str, Any]) -> SwitchboardError:
    """Why ``server`` (a health entry) is not connected, as the engine's exception."""
    if server.get("last_error"):
        return _from_report(server["last_error"])
    if server["state"] == "needs_auth":
        return AuthError(f"server '{server['name']}' needs authentication")
    return UnreachableError(f"server '{server['name']}' is not connected ({server['state']})")


def _tool(row: Mapping[str, Any]) -> Tool:
    """A catalogue row (``switchboard`` JSON form) as an MCP tool under its original name."""
    annotations = row.get("annotations")
    if annotations is not None:
        annotations = {_ANNOTATION_HINTS.get(k, k): v for k, v in annotations.items()}
    return Tool(
        name=row["tool"],
        description=row.get("description"),
        inputSchema=row["input_schema"],
        title=row.get("title"),
        outputSchema=row.get("output_schema"),
        annotations=annotations,
    )


def _result_text(result: _switchboard.CallResult) -> str:
    """What RAGFlow callers get for a tool's result (module docs)."""
    content = result.content
    if result.is_error:
        return f"MCP server error: {content}"
    if not content:
        if result.structured_content is not None:
            return json.dumps(result.structured_content, ensure_ascii=False)
        return "MCP server returned empty content."
    if any(block.get("type") == "text" for block in content):
        return result.text
    return "\n".join(_describe(block) for block in content)


def _describe(block: Mapping[str, Any]) -> str:
    """A line for a block that is not text."""
    kind = block.get("type", "unknown")
    resource = block.get("resource") or {}
    if kind == "resource" and isinstance(resource.get("text"), str):
        return resource["text"]
    detail = block.get("uri") or resource.get("uri") or block.get("mimeType")
    return f"[{kind}: {detail}]" if detail else f"[{kind}]"
