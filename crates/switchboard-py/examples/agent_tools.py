"""Agent-framework tools from a Switchboard hub: what NVIDIA NeMo Agent Toolkit's MCP function
group and a LangChain tool list are, built from `hub.tools()` and `hub.call()`.

The package depends on neither framework. The framework-neutral part (`tool_functions`) is
tested (`tests/test_examples.py`); `langchain_tools` and `nat_functions` show the last step
and import their framework only when called.

What the engine already does that these frameworks' MCP clients do by hand:

- names are namespaced and provider-safe (`memory__read_graph`, <= 64 chars, OpenAI's
  charset), so no `add_function` name check can abort the group;
- `tool_overrides` (alias, description) and `include`/`exclude` live in the config, and an
  override for a tool the server does not have is reported, not silently dropped;
- per-user upstream sessions: a `switchboard.Session` per user on `per_session` servers,
  with the user's variables (e.g. their token) templated into headers;
- one deadline per call, calls in parallel, typed errors.

Run it against any config: `python agent_tools.py switchboard.toml`.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Optional

import switchboard


@dataclass(frozen=True)
class ToolFunction:
    """One tool as frameworks want it: a name, a description, a JSON schema and a coroutine
    function taking keyword arguments and returning the text an LLM reads."""

    name: str
    description: str
    parameters: dict[str, Any]
    call: Callable[..., Awaitable[str]]


def tool_functions(
    hub: switchboard.Hub,
    *,
    session: Optional[switchboard.Session] = None,
    timeout: Optional[float] = None,
) -> list[ToolFunction]:
    """Every exposed tool as a `ToolFunction` calling it on behalf of `session`.

    A tool that reports failure (`is_error`) and a call that fails (unreachable server,
    timeout, ...) both come back as text the LLM can act on; nothing raises into the agent
    loop except cancellation.
    """

    def make_call(name: str) -> Callable[..., Awaitable[str]]:
        async def call(**arguments: Any) -> str:
            try:
                result = await hub.call(name, arguments, session=session, timeout=timeout)
            except switchboard.SwitchboardError as error:
                retry = " It may have run; do not repeat it blindly." if error.may_have_run else ""
                return f"Error calling tool '{name}' ({error.error_class}): {error}.{retry}"
            if result.is_error:
                return f"Tool '{name}' failed: {result.text}"
            if result.text:
                return result.text
            if result.structured_content is not None:
                return json.dumps(result.structured_content)
            return json.dumps(result.content)

        call.__name__ = name
        return call

    functions = []
    for row in hub.tools("openai"):
        spec = row["function"]
        functions.append(
            ToolFunction(
                name=spec["name"],
                description=spec.get("description") or "",
                parameters=spec["parameters"],
                call=make_call(spec["name"]),
            )
        )
    return functions


def langchain_tools(hub: switchboard.Hub, **kwargs: Any) -> list[Any]:
    """LangChain `StructuredTool`s (needs `langchain-core`; it accepts a JSON schema dict as
    `args_schema`)."""
    from langchain_core.tools import StructuredTool

    return [
        StructuredTool.from_function(
            coroutine=f.call,
            name=f.name,
            description=f.description,
            args_schema=f.parameters,
        )
        for f in tool_functions(hub, **kwargs)
    ]


def nat_functions(
    hub: switchboard.Hub, user_id: str, variables: dict[str, str]
) -> dict[str, ToolFunction]:
    """A NAT-style function group for one user: `{name: ToolFunction}`, each routed to the
    user's own upstream session on `per_session` servers (NAT keys its sessions by user id
    the same way). Register each with the framework's `add_function(name, fn, schema,
    description)`; the names are already namespaced (`server__tool`)."""
    session = switchboard.Session(user_id, variables)
    return {f.name: f for f in tool_functions(hub, session=session)}


async def main(config: str) -> None:
    async with switchboard.Hub(config) as hub:
        functions = tool_functions(hub, timeout=30)
        for function in functions:
            print(f"{function.name}: {function.description[:60]}")
        if functions:
            first = functions[0]
            print(f"calling {first.name} with no arguments:", await first.call())


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "switchboard.toml"))
