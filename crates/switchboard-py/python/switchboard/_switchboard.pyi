"""Type stubs of the native module (Rust, PyO3). Use the public names in `switchboard`."""

import asyncio
from collections.abc import Awaitable
from os import PathLike
from typing import Any, Callable, Literal, Optional, Union

__version__: str

def reset_logging() -> None:
    """Makes engine logs follow level changes made in `logging` since import."""

class Config:
    """A validated configuration (TOML or `mcpServers` JSON)."""

    @staticmethod
    def from_path(path: Union[str, PathLike[str]]) -> Config: ...
    @staticmethod
    def from_text(text: str, format: Literal["toml", "json"]) -> Config: ...
    def with_variables(self, variables: dict[str, str]) -> Config: ...
    @property
    def servers(self) -> list[str]: ...
    @property
    def warnings(self) -> list[str]: ...

class Session:
    """One user's identity for per-session servers: their own upstream connection, made with
    their variables (values that are not strings are `str()`-ed)."""

    def __init__(
        self,
        id: str,
        variables: Optional[dict[str, Any]] = None,
        input_handler: Any = None,
    ) -> None:
        """`input_handler` answers what servers ask this session's calls (see `Hub`)."""
    @property
    def id(self) -> str: ...
    @property
    def variables(self) -> dict[str, str]: ...

class CallResult:
    """What a tool call returned."""

    @property
    def content(self) -> list[dict[str, Any]]:
        """Every content block as MCP's JSON (text, image, audio, resource, ...)."""
    @property
    def structured_content(self) -> Any:
        """The tool's `structuredContent`, or None."""
    @property
    def is_error(self) -> bool:
        """The tool reported failure (`isError`)."""
    @property
    def text(self) -> str:
        """Every text block, joined with newlines."""
    def to_dict(self) -> dict[str, Any]:
        """MCP's `CallToolResult` shape: `content`, `structuredContent`, `isError`."""

_Format = Literal["json", "openai", "openai-responses", "anthropic"]
_Progress = Callable[[float, Optional[float], Optional[str]], None]

class HubCore:
    """The hub behind `Hub` and `BlockingHub`."""

    @staticmethod
    def start_blocking(
        config: Config, input_handler: Any = None, token_store: Any = None, opener: Any = None
    ) -> HubCore: ...
    @staticmethod
    def start_async(
        config: Config, input_handler: Any = None, token_store: Any = None, opener: Any = None
    ) -> Awaitable[HubCore]: ...
    def call_blocking(
        self,
        name: str,
        arguments: Optional[dict[str, Any]] = None,
        session: Optional[Session] = None,
        timeout: Optional[float] = None,
        on_progress: Optional[_Progress] = None,
    ) -> CallResult: ...
    def call_async(
        self,
        name: str,
        arguments: Optional[dict[str, Any]] = None,
        session: Optional[Session] = None,
        timeout: Optional[float] = None,
        on_progress: Optional[_Progress] = None,
    ) -> Awaitable[CallResult]: ...
    def call_soon(
        self,
        name: str,
        arguments: Optional[dict[str, Any]],
        session: Optional[Session],
        timeout: Optional[float],
        future: asyncio.Future[CallResult],
        completions: Completions,
        on_progress: Optional[_Progress] = None,
    ) -> CallTask: ...
    def tools(self, format: _Format = "json") -> list[dict[str, Any]]: ...
    def tool(self, name: str) -> dict[str, Any]: ...
    def health(self) -> dict[str, Any]: ...
    def tools_for_blocking(
        self, session: Session, format: _Format = "json"
    ) -> list[dict[str, Any]]: ...
    def tools_for_async(
        self, session: Session, format: _Format = "json"
    ) -> Awaitable[list[dict[str, Any]]]: ...
    def resources_blocking(self, session: Optional[Session] = None) -> dict[str, Any]: ...
    def resources_async(
        self, session: Optional[Session] = None
    ) -> Awaitable[dict[str, Any]]: ...
    def resource_templates_blocking(
        self, session: Optional[Session] = None
    ) -> dict[str, Any]: ...
    def resource_templates_async(
        self, session: Optional[Session] = None
    ) -> Awaitable[dict[str, Any]]: ...
    def prompts_blocking(self, session: Optional[Session] = None) -> dict[str, Any]: ...
    def prompts_async(
        self, session: Optional[Session] = None
    ) -> Awaitable[dict[str, Any]]: ...
    def read_resource_blocking(
        self, uri: str, session: Optional[Session] = None, timeout: Optional[float] = None
    ) -> dict[str, Any]: ...
    def read_resource_async(
        self, uri: str, session: Optional[Session] = None, timeout: Optional[float] = None
    ) -> Awaitable[dict[str, Any]]: ...
    def get_prompt_blocking(
        self,
        name: str,
        arguments: Optional[dict[str, Any]] = None,
        session: Optional[Session] = None,
        timeout: Optional[float] = None,
    ) -> dict[str, Any]: ...
    def get_prompt_async(
        self,
        name: str,
        arguments: Optional[dict[str, Any]] = None,
        session: Optional[Session] = None,
        timeout: Optional[float] = None,
    ) -> Awaitable[dict[str, Any]]: ...
    def session_count(self, server: str) -> int: ...
    def cleanup_sessions_blocking(self, max_age: float) -> int: ...
    def cleanup_sessions_async(self, max_age: float) -> Awaitable[int]: ...
    def close_blocking(self, timeout: float) -> None: ...
    def close_async(self, timeout: float) -> Awaitable[None]: ...

class Completions:
    """One event loop's inbox of finished calls: `loop.add_reader(c.fileno(), c.drain)`."""

    def __init__(self) -> None: ...
    def fileno(self) -> int: ...
    def drain(self) -> None: ...

class CallTask:
    """A call started by `HubCore.call_soon`."""

    def cancel(self) -> None: ...
