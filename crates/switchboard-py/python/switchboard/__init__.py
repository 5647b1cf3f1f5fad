"""Switchboard: an MCP client runtime (Rust engine) for Python.

Connect many MCP servers (stdio, legacy HTTP+SSE, Streamable HTTP) behind one catalogue of
provider-safe tool names, and call their tools in parallel with one deadline per call:

- :class:`Hub` for asyncio, :class:`BlockingHub` for threads (same methods, blocking);
- :class:`Session` for per-user upstream connections;
- :class:`CallResult` with every content block, structured content and ``is_error``;
- :mod:`switchboard.errors`: one exception class per engine error class;
- :mod:`switchboard.ragflow`: a drop-in for RAGFlow's ``MCPToolCallSession``.

Engine logs go to Python's :mod:`logging` under the engine's targets (``switchboard::calls``,
``switchboard::registration``, ...). Levels are read when the first record of a target is
logged; call :func:`reset_logging` after changing them.
"""

from ._hub import BlockingHub, Hub, load_config
from ._switchboard import CallResult, Config, Session, __version__, reset_logging
from . import errors
from .errors import SwitchboardError

__all__ = [
    "BlockingHub",
    "CallResult",
    "Config",
    "Hub",
    "Session",
    "SwitchboardError",
    "errors",
    "load_config",
    "reset_logging",
    "__version__",
]
