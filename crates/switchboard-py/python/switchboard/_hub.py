"""`Hub` (asyncio) and `BlockingHub` (threads): the same engine, two ways to wait."""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import weakref
from collections.abc import Mapping
from typing import Any, Callable, Literal, Optional, Union

from . import _switchboard
from ._switchboard import CallResult, Session
from .errors import ClosedError

ConfigSource = Union[str, "os.PathLike[str]", Mapping[str, Any], _switchboard.Config]
ToolFormat = Literal["json", "openai", "openai-responses", "anthropic"]

#: How long closing waits for connections to end before dropping them (seconds).
CLOSE_TIMEOUT = 10.0


def load_config(
    source: ConfigSource, *, variables: Optional[Mapping[str, str]] = None
) -> _switchboard.Config:
    """A validated config from a file path, TOML or JSON text, or a dict.

    - a ``dict`` is an ``mcpServers`` document (Claude Desktop, Cursor, VS Code shape);
    - a path (``str`` or ``os.PathLike``) is read; ``.json`` files are ``mcpServers``
      documents, anything else TOML;
    - a string that starts with ``{`` is JSON text, one with a line break, ``=`` or ``[``
      TOML text.

    ``variables`` add to the config's ``[variables]`` (used in ``${name}`` templates).
    Raises :class:`switchboard.errors.ConfigError` naming the key and the fix.
    """
    if isinstance(source, _switchboard.Config):
        config = source
    elif isinstance(source, Mapping):
        config = _switchboard.Config.from_text(json.dumps(source), "json")
    elif isinstance(source, os.PathLike):
        config = _switchboard.Config.from_path(os.fspath(source))
    elif isinstance(source, str):
        text = source.lstrip()
        if text.startswith("{"):
            config = _switchboard.Config.from_text(source, "json")
        elif "\n" in source or "=" in source or text.startswith("["):
            config = _switchboard.Config.from_text(source, "toml")
        else:
            config = _switchboard.Config.from_path(source)
    else:
        raise TypeError(
            "config must be a path, TOML/JSON text or a dict in mcpServers shape, "
            f"not {type(source).__name__}"
        )
    if variables:
        config = config.with_variables(dict(variables))
    return config


ProgressCallback = Callable[[float, Optional[float], Optional[str]], None]


class _OnLoop:
    """An input handler whose coroutine methods run on ``loop`` (the asyncio hub's), so they
    may use what lives there; plain methods still run on the engine's thread."""

    def __init__(self, handler: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._handler = handler
        self._loop = loop
        self.answers_url_elicitation = bool(getattr(handler, "answers_url_elicitation", False))
        self.answers_sampling = bool(
            getattr(handler, "answers_sampling", hasattr(handler, "sample"))
        )
        for method in ("elicit", "sample"):
            if hasattr(handler, method):
                setattr(self, method, self._runner(method))

    def _runner(self, method: str) -> Callable[[dict[str, Any]], Any]:
        def run(request: dict[str, Any]) -> Any:
            answer = getattr(self._handler, method)(request)
            if inspect.isawaitable(answer):
                return asyncio.run_coroutine_threadsafe(_awaited(answer), self._loop).result()
            return answer

        return run


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def _on_loop(loop: asyncio.AbstractEventLoop, callback: ProgressCallback) -> ProgressCallback:
    """``callback``, called on ``loop``'s thread instead of the engine's."""

    def call(progress: float, total: Optional[float], message: Optional[str]) -> None:
        loop.call_soon_threadsafe(callback, progress, total, message)

    return call


class _Base:
    """What both hubs share: the catalogue and health, which never wait."""

    _core: Optional[_switchboard.HubCore]

    def _started(self) -> _switchboard.HubCore:
        if self._core is None:
            raise ClosedError(
                "the hub is not started: use `async with Hub(config)` or "
                "`await Hub.connect(config)`"
            )
        return self._core

    def tools(self, format: ToolFormat = "json") -> list[dict[str, Any]]:
        """Every exposed tool.

        ``"json"`` gives Switchboard's rows (``name``, ``server``, ``original``,
        ``description``, ``input_schema``, ``annotations``, ...); ``"openai"``,
        ``"openai-responses"`` and ``"anthropic"`` the providers' function-calling forms.
        """
        return self._started().tools(format)

    def tool(self, name: str) -> dict[str, Any]:
        """One tool's row by exposed name, or a loosely typed one (``read_graph`` finds
        ``memory__read_graph`` when only one tool ends that way). ``KeyError`` otherwise."""
        return self._started().tool(name)

    def health(self) -> dict[str, Any]:
        """Where every server stands: ``overall`` (``healthy``/``degraded``/``unhealthy``)
        and, per server, state, tool count, last error and last success."""
        return self._started().health()

    def session_count(self, server: str) -> int:
        """Per-session connections open for ``server``."""
        return self._started().session_count(server)


class Hub(_Base):
    """Many MCP servers behind one catalogue, for asyncio.

    ::

        async with switchboard.Hub("switchboard.toml") as hub:
            result = await hub.call("everything__echo", {"message": "hi"}, timeout=10)
            print(result.text)

    Calls run in parallel over shared connections (per-session servers: one connection per
    :class:`Session`). Cancelling ``await hub.call(...)`` cancels the call at the server.
    """

    def __init__(
        self,
        config: ConfigSource,
        *,
        variables: Optional[Mapping[str, str]] = None,
        input_handler: Any = None,
        token_store: Any = None,
        opener: Any = None,
    ) -> None:
        """Validates ``config`` (see :func:`load_config`); servers are connected by
        :meth:`start` (or ``async with``).

        ``input_handler`` answers what servers ask during calls: an object with
        ``elicit(request)`` (a form or a URL: return a dict of values, ``True`` to accept a
        URL, ``None`` to decline, ``"cancel"``) and/or ``sample(request)`` (return the
        assistant's text, or ``None``); plain or ``async`` methods (``async`` ones run on
        this hub's event loop). ``answers_url_elicitation`` / ``answers_sampling``
        attributes say what is offered to servers. A :class:`Session`'s own handler wins
        for its calls. Without one, a server's ``elicitation`` setting answers and sampling
        is refused.

        OAuth: ``token_store`` is where sign-ins are kept: ``"file"`` (the default: the
        user's state directory, shared with the CLI, so ``switchboard auth login SERVER``
        signs this program in too), ``"memory"``, or a directory. ``opener`` completes a
        browser sign-in when a server asks for one: ``None`` (the default: none, the server
        is ``needs_auth``), ``"browser"`` (``$SWITCHBOARD_BROWSER``/``$BROWSER``), or a
        callable ``opener(server, url)`` that hands the authorization URL on; it runs on a
        thread of its own while the sign-in waits for its redirect (an exception it raises
        is logged).
        """
        self._config = load_config(config, variables=variables)
        self._input_handler = input_handler
        self._token_store = token_store
        self._opener = opener
        self._core = None

    @classmethod
    async def connect(
        cls,
        config: ConfigSource,
        *,
        variables: Optional[Mapping[str, str]] = None,
        input_handler: Any = None,
        token_store: Any = None,
        opener: Any = None,
    ) -> "Hub":
        """A started hub: ``hub = await Hub.connect(config)``."""
        hub = cls(
            config,
            variables=variables,
            input_handler=input_handler,
            token_store=token_store,
            opener=opener,
        )
        await hub.start()
        return hub

    async def start(self) -> None:
        """Connects every server (each under its registration policy). Idempotent."""
        if self._core is None:
            handler = self._input_handler
            if handler is not None:
                handler = _OnLoop(handler, asyncio.get_running_loop())
            self._core = await _switchboard.HubCore.start_async(
                self._config, handler, self._token_store, self._opener
            )

    async def __aenter__(self) -> "Hub":
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def call(
        self,
        name: str,
        arguments: Optional[Mapping[str, Any]] = None,
        *,
        session: Optional[Session] = None,
        timeout: Optional[float] = None,
        on_progress: Optional[ProgressCallback] = None,
    ) -> CallResult:
        """Calls the tool exposed as ``name``.

        ``timeout`` (seconds) is one deadline for the whole call, waiting for a connection
        included; ``None`` uses the server's ``tool_call_timeout``. A tool that reports
        failure returns a result with ``is_error``; everything else that goes wrong raises a
        :class:`switchboard.errors.SwitchboardError`. ``on_progress(progress, total,
        message)`` hears the server's progress notifications for this call, in order, on
        this event loop.
        """
        core = self._started()
        loop = asyncio.get_running_loop()
        if on_progress is not None:
            on_progress = _on_loop(loop, on_progress)
        completions = _completions(loop)
        if completions is None:
            return await core.call_async(
                name, _arguments(arguments), session, timeout, on_progress
            )
        future = loop.create_future()
        task = core.call_soon(
            name, _arguments(arguments), session, timeout, future, completions, on_progress
        )
        try:
            return await future
        except BaseException:
            task.cancel()  # cancelled (or interrupted) here: the call ends at the server too
            raise

    async def tools_for(self, session: Session, format: ToolFormat = "json") -> list[dict[str, Any]]:
        """:meth:`tools` as ``session`` sees them: a ``per_session`` server whose tool list
        is private to each user (``cacheScope: "private"``) shows the session its own list,
        never another user's. May list tools, so it is awaited."""
        return await self._started().tools_for_async(session, format)

    async def resources(self, *, session: Optional[Session] = None) -> dict[str, Any]:
        """Every server's resources: ``{"items": [...], "failures": [...]}``.

        Each item has ``uri`` (the exposed URI, ``SERVER+URI``: what :meth:`read_resource`
        takes), ``server``, ``server_uri`` (the server's own), ``name`` and, when the server
        says, ``title``, ``description``, ``mime_type``, ``size``. A server whose listing
        failed is one error report in ``failures`` (the others are listed all the same).
        Servers without resources list none. With ``session``, a ``per_session`` server whose
        list is private shows the session its own.
        """
        return await self._started().resources_async(session)

    async def resource_templates(self, *, session: Optional[Session] = None) -> dict[str, Any]:
        """Every server's resource templates (``uri_template``: ``SERVER+TEMPLATE``), like
        :meth:`resources`."""
        return await self._started().resource_templates_async(session)

    async def read_resource(
        self,
        uri: str,
        *,
        session: Optional[Session] = None,
        timeout: Optional[float] = None,
    ) -> dict[str, Any]:
        """Reads the resource at the exposed ``uri``: ``{"contents": [...]}``, each part with
        ``uri`` (exposed), ``mimeType`` and ``text`` or ``blob`` (base64). Raises
        :class:`switchboard.errors.NotFoundError` when there is no such resource."""
        return await self._started().read_resource_async(uri, session, timeout)

    async def prompts(self, *, session: Optional[Session] = None) -> dict[str, Any]:
        """Every server's prompts (``name``: ``SERVER__PROMPT``, ``prompt``, ``arguments``
        with ``required``), like :meth:`resources`."""
        return await self._started().prompts_async(session)

    async def get_prompt(
        self,
        name: str,
        arguments: Optional[Mapping[str, Any]] = None,
        *,
        session: Optional[Session] = None,
        timeout: Optional[float] = None,
    ) -> dict[str, Any]:
        """Gets the prompt exposed as ``name`` with ``arguments`` (strings; other values are
        sent as their JSON text): ``{"description": ..., "messages": [{"role": "user",
        "content": {...}}, ...]}``. A missing required argument raises
        :class:`switchboard.errors.InvalidArgumentsError`, an unknown prompt
        :class:`switchboard.errors.NotFoundError`."""
        core = self._started()
        return await core.get_prompt_async(name, _arguments(arguments), session, timeout)

    async def cleanup_sessions(self, max_age: float) -> int:
        """Closes per-session connections idle for at least ``max_age`` seconds; returns
        how many."""
        return await self._started().cleanup_sessions_async(max_age)

    async def aclose(self, timeout: float = CLOSE_TIMEOUT) -> None:
        """Closes every connection, waiting at most ``timeout`` seconds. Calls waiting or
        in flight fail at once with :class:`ClosedError`; later calls too. Idempotent."""
        if self._core is not None:
            await self._core.close_async(timeout)


class BlockingHub(_Base):
    """:class:`Hub` for threads: every method blocks the calling thread (the GIL is
    released while it waits, so many threads call at once). Ctrl-C interrupts a call and
    cancels it at the server.

    ::

        with switchboard.BlockingHub({"mcpServers": {...}}) as hub:
            print(hub.call("memory__read_graph").text)
    """

    def __init__(
        self,
        config: ConfigSource,
        *,
        variables: Optional[Mapping[str, str]] = None,
        input_handler: Any = None,
        token_store: Any = None,
        opener: Any = None,
    ) -> None:
        """Validates ``config`` (see :func:`load_config`) and connects every server.
        ``input_handler``, ``token_store``, ``opener``: see :class:`Hub` (the handler's
        methods run on the engine's threads; ``async`` ones in a loop of their own)."""
        self._core = None
        self._core = _switchboard.HubCore.start_blocking(
            load_config(config, variables=variables), input_handler, token_store, opener
        )

    def __enter__(self) -> "BlockingHub":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def call(
        self,
        name: str,
        arguments: Optional[Mapping[str, Any]] = None,
        *,
        session: Optional[Session] = None,
        timeout: Optional[float] = None,
        on_progress: Optional[ProgressCallback] = None,
    ) -> CallResult:
        """:meth:`Hub.call`, blocking; ``on_progress`` is called on an engine thread."""
        return self._started().call_blocking(
            name, _arguments(arguments), session, timeout, on_progress
        )

    def tools_for(self, session: Session, format: ToolFormat = "json") -> list[dict[str, Any]]:
        """:meth:`Hub.tools_for`, blocking."""
        return self._started().tools_for_blocking(session, format)

    def resources(self, *, session: Optional[Session] = None) -> dict[str, Any]:
        """:meth:`Hub.resources`, blocking."""
        return self._started().resources_blocking(session)

    def resource_templates(self, *, session: Optional[Session] = None) -> dict[str, Any]:
        """:meth:`Hub.resource_templates`, blocking."""
        return self._started().resource_templates_blocking(session)

    def read_resource(
        self,
        uri: str,
        *,
        session: Optional[Session] = None,
        timeout: Optional[float] = None,
    ) -> dict[str, Any]:
        """:meth:`Hub.read_resource`, blocking."""
        return self._started().read_resource_blocking(uri, session, timeout)

    def prompts(self, *, session: Optional[Session] = None) -> dict[str, Any]:
        """:meth:`Hub.prompts`, blocking."""
        return self._started().prompts_blocking(session)

    def get_prompt(
        self,
        name: str,
        arguments: Optional[Mapping[str, Any]] = None,
        *,
        session: Optional[Session] = None,
        timeout: Optional[float] = None,
    ) -> dict[str, Any]:
        """:meth:`Hub.get_prompt`, blocking."""
        core = self._started()
        return core.get_prompt_blocking(name, _arguments(arguments), session, timeout)

    def cleanup_sessions(self, max_age: float) -> int:
        """:meth:`Hub.cleanup_sessions`, blocking."""
        return self._started().cleanup_sessions_blocking(max_age)

    def close(self, timeout: float = CLOSE_TIMEOUT) -> None:
        """:meth:`Hub.aclose`, blocking."""
        if self._core is not None:
            self._core.close_blocking(timeout)


#: Per event loop, the inbox its finished calls are delivered through (None: the loop cannot
#: watch a descriptor, e.g. Windows' proactor loop, and calls use `HubCore.call_async`).
_COMPLETIONS: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Optional[_switchboard.Completions]]" = (
    weakref.WeakKeyDictionary()
)


def _completions(loop: asyncio.AbstractEventLoop) -> Optional[_switchboard.Completions]:
    """The loop's inbox of finished calls, made and watched on first use: finished calls are
    handed to the loop's thread in batches, with no thread taking the GIL per call."""
    try:
        return _COMPLETIONS[loop]
    except KeyError:
        pass
    completions: Optional[_switchboard.Completions] = _switchboard.Completions()
    try:
        loop.add_reader(completions.fileno(), completions.drain)
    except NotImplementedError:
        completions = None
    _COMPLETIONS[loop] = completions
    return completions


def _arguments(arguments: Optional[Mapping[str, Any]]) -> Optional[dict[str, Any]]:
    if arguments is None or isinstance(arguments, dict):
        return arguments
    if isinstance(arguments, Mapping):
        return dict(arguments)
    raise TypeError(f"tool arguments must be a mapping, not {type(arguments).__name__}")
