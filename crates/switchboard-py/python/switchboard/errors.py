"""Exceptions raised by switchboard: one class per engine error class.

Every exception is a :class:`SwitchboardError` and carries what the engine knows about the
failure, so callers decide without parsing messages:

- ``error_class``: the engine's class name (``"unreachable"``, ``"timeout"``, ...);
- ``server``: the server (or tooling registry) it concerns, or ``None``;
- ``delivery``: ``"not_sent"``, ``"maybe_sent"`` or ``"answered"``;
- ``may_have_run``: ``True`` unless the request provably never reached the server (a call
  that may have run is never retried by the engine unless the tool says it is safe);
- ``retry_after``: seconds the server asked to wait (HTTP ``Retry-After``), or ``None``;
- ``resource_metadata``: for auth failures, the OAuth protected-resource metadata URL;
- ``auth``: for sign-in failures, a dict: ``step`` (``"metadata"``, ``"registration"``,
  ``"authorization"``, ``"token"`` or ``"store"``), the authorization server's ``error`` and
  ``error_description``, ``detail`` and ``needs_login``; else ``None``;
- ``report``: all of the above as the engine's JSON error report (a dict).

Some classes also derive from the builtin exception callers already catch:
``TimeoutError`` is a builtin ``TimeoutError``, ``ConfigError`` and
``InvalidArgumentsError`` are ``ValueError``, ``UnreachableError`` is a ``ConnectionError``,
``UnknownToolError`` and ``NotFoundError`` are ``LookupError`` subclasses.
"""

from __future__ import annotations

import builtins
from typing import Any, Optional

__all__ = [
    "SwitchboardError",
    "ConfigError",
    "UnreachableError",
    "AuthError",
    "TimeoutError",
    "ProtocolError",
    "ToolError",
    "UnknownToolError",
    "InvalidArgumentsError",
    "SessionLimitError",
    "ClosedError",
    "DiscoveryError",
    "NotFoundError",
]


class SwitchboardError(Exception):
    """A failure reported by the engine. See the module docs for the attributes."""

    #: The engine's class name for this kind of failure.
    error_class: str = "error"

    def __init__(self, message: str, *, report: Optional[dict[str, Any]] = None) -> None:
        super().__init__(message)
        report = dict(report or {})
        report.setdefault("class", type(self).error_class)
        report.setdefault("message", message)
        report.setdefault("delivery", "not_sent")
        report.setdefault("may_have_run", report["delivery"] != "not_sent")
        self.report: dict[str, Any] = report
        self.message: str = message
        self.server: Optional[str] = report.get("server")
        self.delivery: str = report["delivery"]
        self.may_have_run: bool = bool(report["may_have_run"])
        retry_after_ms = report.get("retry_after_ms")
        self.retry_after: Optional[float] = (
            None if retry_after_ms is None else retry_after_ms / 1000.0
        )
        self.resource_metadata: Optional[str] = report.get("resource_metadata")
        self.auth: Optional[dict] = report.get("auth")


class ConfigError(SwitchboardError, ValueError):
    """The configuration is invalid; the message names the file, the key and the fix."""

    error_class = "config"


class UnreachableError(SwitchboardError, ConnectionError):
    """The server could not be reached, or the connection broke."""

    error_class = "unreachable"


class AuthError(SwitchboardError):
    """The server refused our credentials (HTTP 401/403)."""

    error_class = "auth"


class TimeoutError(SwitchboardError, builtins.TimeoutError):
    """A deadline passed (connect, list or call)."""

    error_class = "timeout"


class ProtocolError(SwitchboardError):
    """The server broke the MCP protocol or answered with a JSON-RPC error."""

    error_class = "protocol"


class ToolError(SwitchboardError):
    """The tool itself failed."""

    error_class = "tool_error"


class UnknownToolError(SwitchboardError, LookupError):
    """No tool is exposed under that name."""

    error_class = "unknown_tool"


class InvalidArgumentsError(SwitchboardError, ValueError):
    """The arguments do not match the tool's input schema; nothing was sent."""

    error_class = "invalid_arguments"


class SessionLimitError(SwitchboardError):
    """A per-session server has as many sessions open as it may, all in use."""

    error_class = "session_limit"


class ClosedError(SwitchboardError):
    """The hub (or the connection) is closed or closing."""

    error_class = "closed"


class DiscoveryError(SwitchboardError):
    """Asking a tooling registry which servers to use failed."""

    error_class = "discovery"


class NotFoundError(SwitchboardError, LookupError):
    """No resource or prompt answers to that URI or name (at the hub or at the server)."""

    error_class = "not_found"


_BY_CLASS = {
    cls.error_class: cls
    for cls in (
        ConfigError,
        UnreachableError,
        AuthError,
        TimeoutError,
        ProtocolError,
        ToolError,
        UnknownToolError,
        InvalidArgumentsError,
        SessionLimitError,
        ClosedError,
        DiscoveryError,
        NotFoundError,
    )
}


def _from_report(report: dict[str, Any]) -> SwitchboardError:
    """The exception for an engine error report (called by the native module)."""
    cls = _BY_CLASS.get(report.get("class", ""), SwitchboardError)
    return cls(report.get("message", ""), report=report)
