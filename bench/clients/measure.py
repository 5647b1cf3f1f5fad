"""What the Python benchmark clients (python_client.py, switchboard_py_client.py) measure
and print the same way: this process's CPU time, nearest-rank percentiles, one JSON line
per phase."""

from __future__ import annotations

import json
import resource


def cpu_us() -> float:
    """This process's user + system CPU time (all its threads), in microseconds."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return (ru.ru_utime + ru.ru_stime) * 1e6


def percentile(sorted_us: list[float], q: float) -> float:
    # Nearest-rank percentile, the same rule the Node and Rust clients use.
    rank = max(1, -(-len(sorted_us) * q // 100))  # ceil(n*q/100)
    return sorted_us[int(rank) - 1]


def report(client: str, phase: str, latencies: list[float], wall_s: float, cpu: float) -> None:
    lat = sorted(latencies)
    n = len(lat)
    print(
        json.dumps(
            {
                "client": client,
                "phase": phase,
                "calls": n,
                "calls_per_sec": round(n / wall_s, 1),
                "p50_us": round(percentile(lat, 50), 1),
                "p99_us": round(percentile(lat, 99), 1),
                "client_cpu_us_per_call": round(cpu / n, 1),
            }
        ),
        flush=True,
    )
