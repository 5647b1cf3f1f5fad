"""Echo workload with the official Python MCP SDK (`mcp` from PyPI), for scripts/compare-clients.

Usage: python_client.py URL [--calls N] [--concurrency C] [--warmup W]

Opens one Streamable HTTP session, warms up, then runs N sequential `echo` calls and N calls
with C in flight, and prints one JSON line per phase. Connect/initialize and warm-up are not
measured. CPU is this process's own user+system time (resource.getrusage(RUSAGE_SELF)).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from mcp import ClientSession

from measure import cpu_us, report

try:  # mcp >= 1.2x / 2.x
    from mcp.client.streamable_http import streamable_http_client as _http_client
except ImportError:  # older releases
    from mcp.client.streamable_http import streamablehttp_client as _http_client

ARGS = {"message": "hello"}


async def one_call(session: ClientSession) -> float:
    start = time.perf_counter_ns()
    result = await session.call_tool("echo", ARGS)
    elapsed = (time.perf_counter_ns() - start) / 1000
    if getattr(result, "is_error", None) or getattr(result, "isError", None):  # 2.x / 1.x names
        raise RuntimeError(f"echo failed: {result}")
    return elapsed


async def sequential(session: ClientSession, calls: int) -> list[float]:
    return [await one_call(session) for _ in range(calls)]


async def concurrent(session: ClientSession, calls: int, in_flight: int) -> list[float]:
    sem = asyncio.Semaphore(in_flight)

    async def bounded() -> float:
        async with sem:
            return await one_call(session)

    return list(await asyncio.gather(*(bounded() for _ in range(calls))))


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=100)
    args = parser.parse_args()

    async with _http_client(args.url) as streams:
        read, write = streams[0], streams[1]  # 1.x yields a third item (session id getter)
        async with ClientSession(read, write) as session:
            await session.initialize()
            await sequential(session, args.warmup)

            cpu0, t0 = cpu_us(), time.perf_counter()
            lat = await sequential(session, args.calls)
            report("python", "sequential", lat, time.perf_counter() - t0, cpu_us() - cpu0)

            cpu0, t0 = cpu_us(), time.perf_counter()
            lat = await concurrent(session, args.calls, args.concurrency)
            report("python", f"concurrent{args.concurrency}", lat, time.perf_counter() - t0, cpu_us() - cpu0)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(130)
