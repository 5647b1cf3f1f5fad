"""Echo workload with the Switchboard Python package (`switchboard`, crates/switchboard-py),
for scripts/compare-clients.

Usage: switchboard_py_client.py URL [--calls N] [--concurrency C] [--warmup W] [--api async|threads]

The same workload and output as python_client.py: one hub with one server (`kit`, the URL,
Streamable HTTP, one session), warm-up, then N sequential `kit__echo` calls and N calls with C
in flight, one JSON line per phase. Connect/initialize and warm-up are not measured. CPU is
this process's own user+system time (resource.getrusage(RUSAGE_SELF)), which includes the
engine's runtime threads.

- `--api async` (default): `switchboard.Hub` on asyncio; C in flight exactly as
  python_client.py does it (asyncio.gather over N coroutines bounded by a semaphore).
- `--api threads`: `switchboard.BlockingHub`; sequential calls on the main thread, and C
  threads calling at once for the concurrent phase (the GIL is released while a call waits).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import threading
import time

import switchboard

from measure import cpu_us, report

TOOL = "kit__echo"
ARGS = {"message": "hello"}


def check(result: switchboard.CallResult) -> None:
    if result.is_error:
        raise RuntimeError(f"echo failed: {result}")


# ---------------------------------------------------------------------------------- asyncio


async def one_call(hub: switchboard.Hub) -> float:
    start = time.perf_counter_ns()
    result = await hub.call(TOOL, ARGS)
    elapsed = (time.perf_counter_ns() - start) / 1000
    check(result)
    return elapsed


async def sequential(hub: switchboard.Hub, calls: int) -> list[float]:
    return [await one_call(hub) for _ in range(calls)]


async def concurrent(hub: switchboard.Hub, calls: int, in_flight: int) -> list[float]:
    sem = asyncio.Semaphore(in_flight)

    async def bounded() -> float:
        async with sem:
            return await one_call(hub)

    return list(await asyncio.gather(*(bounded() for _ in range(calls))))


async def run_async(args, config: dict) -> None:
    async with switchboard.Hub(config) as hub:
        await sequential(hub, args.warmup)

        cpu0, t0 = cpu_us(), time.perf_counter()
        lat = await sequential(hub, args.calls)
        report("switchboard-py", "sequential", lat, time.perf_counter() - t0, cpu_us() - cpu0)

        cpu0, t0 = cpu_us(), time.perf_counter()
        lat = await concurrent(hub, args.calls, args.concurrency)
        report("switchboard-py", f"concurrent{args.concurrency}", lat, time.perf_counter() - t0, cpu_us() - cpu0)


# ---------------------------------------------------------------------------------- threads


def one_call_blocking(hub: switchboard.BlockingHub) -> float:
    start = time.perf_counter_ns()
    result = hub.call(TOOL, ARGS)
    elapsed = (time.perf_counter_ns() - start) / 1000
    check(result)
    return elapsed


def concurrent_threads(hub: switchboard.BlockingHub, calls: int, in_flight: int) -> tuple[list[float], float, float]:
    """N calls from C threads; returns the latencies, wall seconds and CPU µs. The threads
    are started before the clock and wait on a barrier, so thread start-up is not measured."""
    # The threads take calls from one counter until N are taken (itertools.count's next()
    # is atomic under the GIL), so exactly N calls run with C in flight.
    taken = itertools.count()
    results: list[list[float]] = [[] for _ in range(in_flight)]
    errors: list[BaseException] = []
    go = threading.Barrier(in_flight + 1)

    def worker(mine: list[float]) -> None:
        go.wait()
        try:
            while next(taken) < calls:
                mine.append(one_call_blocking(hub))
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(r,), daemon=True) for r in results]
    for t in threads:
        t.start()
    cpu0, t0 = cpu_us(), time.perf_counter()
    go.wait()
    for t in threads:
        t.join()
    wall, cpu = time.perf_counter() - t0, cpu_us() - cpu0
    if errors:
        raise errors[0]
    return [x for r in results for x in r], wall, cpu


def run_threads(args, config: dict) -> None:
    with switchboard.BlockingHub(config) as hub:
        for _ in range(args.warmup):
            one_call_blocking(hub)

        cpu0, t0 = cpu_us(), time.perf_counter()
        lat = [one_call_blocking(hub) for _ in range(args.calls)]
        report("switchboard-py-threads", "sequential", lat, time.perf_counter() - t0, cpu_us() - cpu0)

        lat, wall, cpu = concurrent_threads(hub, args.calls, args.concurrency)
        report("switchboard-py-threads", f"concurrent{args.concurrency}", lat, wall, cpu)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--api", choices=["async", "threads"], default="async")
    args = parser.parse_args()

    config = {"mcpServers": {"kit": {"url": args.url}}}
    if args.api == "async":
        asyncio.run(run_async(args, config))
    else:
        run_threads(args, config)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
