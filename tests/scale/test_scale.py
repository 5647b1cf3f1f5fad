"""Issue 17's scale-out tests (docs/scale-out-design.md (e), slice S7): three `switchboard serve`
replicas behind HAProxy doing plain round-robin (no affinity), sharing one `redis-server` (unix
socket, no persistence) and one keyring, in front of one stateful testkit as a `per_session`
server whose connections carry the user (`X-User`). The official Python SDK client runs one
session of 1,000 `tick` calls, 8 in flight, through HAProxy; the testkit counts executions per
tick id and `initialize`s per user, so "never run twice" and "one upstream session for the
downstream session" are its counts, not ours.

Run by ./scripts/test (needs haproxy and redis-server: `apt-get install -y haproxy
redis-server`, which .ci/run does) after the workspace build made target/debug/switchboard and
switchboard-testkit.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx2
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / "target" / "debug"
KEYS = "1=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n"
CALLS = 1000
IN_FLIGHT = 8

pytestmark = pytest.mark.skipif(
    not (shutil.which("haproxy") and shutil.which("redis-server")),
    reason="needs haproxy and redis-server (apt-get install -y haproxy redis-server)",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what: str, check, bound: float = 30.0) -> None:
    deadline = time.monotonic() + bound
    while not check():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.05)


def answers(url: str) -> bool:
    try:
        return httpx2.get(url, timeout=1.0).status_code == 200
    except httpx2.HTTPError:
        return False


class Cluster:
    """Redis, the testkit, three replicas and HAProxy, in `tmp`."""

    def __init__(self, tmp: Path, gateway: str = "", redis_aof: bool = False) -> None:
        """`gateway`: more `[gateway]` lines for the replicas' config; `redis_aof`: Redis keeps
        an append-only file (fsync always), so a restarted Redis has the records again."""
        self.tmp = tmp
        self.procs: list[subprocess.Popen] = []
        sock = tmp / "redis.sock"
        self.redis_argv = [
            "redis-server", "--port", "0", "--unixsocket", str(sock), "--save", "",
            "--appendonly", "yes" if redis_aof else "no", "--appendfsync", "always",
            "--dir", str(tmp),
        ]
        self.redis = self.spawn(self.redis_argv)
        wait_for("redis listens", sock.exists)
        self.redis_url = f"redis+unix://{sock}"
        self.redis_sock = sock
        self.kit_port = free_port()
        self.kit = self.start_kit()
        self.kit_url = f"http://127.0.0.1:{self.kit_port}/mcp"
        (tmp / "keys").write_text(KEYS)
        (tmp / "switchboard.toml").write_text(
            f'[gateway]\nsession_headers = {{ "X-User" = "user" }}\n{gateway}\n'
            '[variables]\nuser = "nobody"\n\n'
            '[scale]\nstore = "redis"\nkeys_file = "keys"\n\n'
            f'[servers.kit]\nurl = "{self.kit_url}"\nsession_mode = "per_session"\n'
            'headers = { "X-User" = "${user}" }\n'
        )
        self.ports = [free_port() for _ in range(3)]
        self.replicas: list[subprocess.Popen | None] = [self.replica(p) for p in self.ports]
        for port in self.ports:
            wait_for(f"replica {port} ready", lambda: answers(f"http://127.0.0.1:{port}/readyz"))
        self.lb_port, self.stats_port = free_port(), free_port()
        servers = "\n".join(
            f"  server g{i + 1} 127.0.0.1:{p} check" for i, p in enumerate(self.ports)
        )
        (tmp / "haproxy.cfg").write_text(
            "defaults\n  mode http\n  timeout connect 1s\n  timeout client 120s\n"
            "  timeout server 120s\n  retries 3\n  option redispatch\n"
            "  retry-on conn-failure\n\n"
            f"frontend mcp\n  bind 127.0.0.1:{self.lb_port}\n  default_backend gw\n\n"
            # The check names a Host the gateway answers (its DNS-rebinding guard).
            "backend gw\n  balance roundrobin\n  option httpchk\n"
            "  http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host 127.0.0.1\n"
            "  default-server inter 300ms fall 2 rise 2\n" + servers + "\n\n"
            f"listen stats\n  bind 127.0.0.1:{self.stats_port}\n  stats enable\n"
            "  stats uri /stats\n"
        )
        check = subprocess.run(
            ["haproxy", "-c", "-f", str(tmp / "haproxy.cfg")], capture_output=True, text=True
        )
        assert check.returncode == 0, check.stdout + check.stderr
        self.spawn(["haproxy", "-db", "-f", str(tmp / "haproxy.cfg")])
        self.url = f"http://127.0.0.1:{self.lb_port}/mcp"
        wait_for("haproxy sees the replicas up", lambda: self.servers_up() == 3)

    def start_kit(self) -> subprocess.Popen:
        """The stateful testkit on its port (again, after a restart: its sessions are gone)."""
        kit = self.spawn(
            [str(BIN / "switchboard-testkit"), "--transport", "streamable-http",
             "--port", str(self.kit_port), "--latency", "2ms"],
            stdout=subprocess.PIPE,
        )
        line = kit.stdout.readline().decode().strip()
        assert line.startswith("listening "), line
        return kit

    def restart_kit(self) -> None:
        self.kit.kill()
        self.kit.wait()
        self.kit = self.start_kit()

    def spawn(self, argv: list[str], **kwargs) -> subprocess.Popen:
        kwargs.setdefault("stdout", subprocess.DEVNULL)
        proc = subprocess.Popen(argv, stderr=subprocess.DEVNULL, cwd=self.tmp, **kwargs)
        self.procs.append(proc)
        return proc

    def replica(self, port: int) -> subprocess.Popen:
        """A replica on `port`; its log (info, and debug for the gateway) goes on in
        `replica-PORT.log` across restarts, for `logs()`."""
        env = dict(
            os.environ, SWITCHBOARD_REDIS_URL=self.redis_url, NO_COLOR="1",
            RUST_LOG="info,switchboard_gateway=debug",
        )
        log = open(self.tmp / f"replica-{port}.log", "ab")
        proc = subprocess.Popen(
            [str(BIN / "switchboard"), "serve", "--config", "switchboard.toml",
             "--listen", f"127.0.0.1:{port}"],
            env=env, cwd=self.tmp, stdout=subprocess.DEVNULL, stderr=log,
        )
        log.close()
        self.procs.append(proc)
        return proc

    def logs(self) -> str:
        """The replicas' warnings and errors, for a failed test's output."""
        lines = []
        for port in self.ports:
            path = self.tmp / f"replica-{port}.log"
            if path.exists():
                for line in path.read_text(errors="replace").splitlines():
                    if " WARN " in line or " ERROR " in line:
                        lines.append(f"{port}: {line}")
        return "\n".join(lines[-60:])

    def stats(self) -> list[dict]:
        text = httpx2.get(f"http://127.0.0.1:{self.stats_port}/stats;csv").text
        rows = csv.DictReader(io.StringIO(text.lstrip("# ")))
        return [r for r in rows if r["pxname"] == "gw" and r["svname"].startswith("g")]

    def redis_commands(self) -> dict[str, int]:
        """Redis's count of commands run, by command (`INFO commandstats`, `info` left out)."""
        out = subprocess.run(
            ["redis-cli", "-s", str(self.redis_sock), "INFO", "commandstats"],
            capture_output=True, text=True, check=True,
        ).stdout
        counts = {}
        for line in out.splitlines():
            if line.startswith("cmdstat_") and not line.startswith("cmdstat_info:"):
                name, stats = line[len("cmdstat_"):].split(":", 1)
                counts[name] = int(stats.split(",")[0].split("=")[1])
        return counts

    def stop_redis(self) -> None:
        self.redis.send_signal(signal.SIGTERM)
        self.redis.wait(timeout=30)

    def start_redis(self) -> None:
        self.redis = self.spawn(self.redis_argv)
        wait_for("redis answers", lambda: subprocess.run(
            ["redis-cli", "-s", str(self.redis_sock), "PING"], capture_output=True, text=True
        ).stdout.strip() == "PONG")

    def servers_up(self) -> int:
        try:
            return sum(1 for r in self.stats() if r["status"] == "UP")
        except httpx2.HTTPError:
            return 0

    def kill(self, index: int) -> None:
        proc = self.replicas[index]
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def restart(self, index: int) -> None:
        self.replicas[index] = self.replica(self.ports[index])

    def terminate(self, index: int) -> int:
        """SIGTERM to replica `index` (as Kubernetes stops a pod); its exit code when it ends."""
        proc = self.replicas[index]
        proc.send_signal(signal.SIGTERM)
        return proc.wait(timeout=60)

    def close(self) -> None:
        """Stops everything; prints the replicas' warnings (pytest shows them if it failed)."""
        print("replica warnings and errors:\n" + self.logs())
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.fixture
def cluster(tmp_path):
    running = Cluster(tmp_path)
    yield running
    running.close()


async def kit_counts(kit_url: str) -> dict:
    """The testkit's counts, asked directly (not through the gateway)."""
    import json

    async with streamable_http_client(kit_url) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            result = await session.call_tool("counts", {})
            return json.loads(result.content[0].text)


async def run_session(url: str, on_call=None, between=None) -> tuple[dict[str, bool], str]:
    """One SDK session through HAProxy: CALLS ticks, IN_FLIGHT at a time; `on_call(n)` runs
    before call n is sent; with `between`, the calls run in two halves and `between()` runs
    when the first half is answered (nothing in flight). Returns each id's outcome (True:
    answered) and the session id."""
    outcomes: dict[str, bool] = {}
    errors: dict[str, str] = {}
    session_id = {"id": None}

    async def remember(response: httpx2.Response) -> None:
        if response.headers.get("mcp-session-id"):
            session_id["id"] = response.headers["mcp-session-id"]

    http = create_mcp_http_client(headers={"X-User": "alice"})
    http.event_hooks = {"request": [], "response": [remember]}
    async with http:
        async with streamable_http_client(url, http_client=http, terminate_on_close=False) as s:
            async with ClientSession(s[0], s[1]) as session:
                await session.initialize()
                gate = asyncio.Semaphore(IN_FLIGHT)

                async def one(n: int) -> None:
                    tick = f"t{n}"
                    async with gate:
                        if on_call:
                            await on_call(n)
                        try:
                            result = await asyncio.wait_for(
                                session.call_tool("kit__tick", {"id": tick}), 30
                            )
                            outcomes[tick] = not result.is_error
                            if result.is_error:
                                errors.setdefault("first", result.model_dump_json()[:300])
                        except Exception as error:  # a failed request, as the client sees it
                            outcomes[tick] = False
                            errors.setdefault("first", f"{type(error).__name__}: {error}")

                if between is None:
                    await asyncio.gather(*(one(n) for n in range(CALLS)))
                else:
                    await asyncio.gather(*(one(n) for n in range(CALLS // 2)))
                    await between()
                    await asyncio.gather(*(one(n) for n in range(CALLS // 2, CALLS)))
    if errors:
        print("first failure:", errors["first"])
    return outcomes, session_id["id"]


def assert_one_upstream_session(counts: dict) -> None:
    """The user's upstream sessions: one, whichever replicas served the session (a replica
    that sees the session first attaches to the one another opened)."""
    created = counts["sessions_created"].get("alice")
    print(f"upstream sessions created for alice: {created}")
    assert created == 1, counts["sessions_created"]


def assert_one_delete(kit_url: str) -> None:
    """After the client's DELETE: alice's one upstream session is DELETEd once, not once
    per replica that held it (every replica ends it; the first to claim the ending sends
    the DELETE). The other replicas hear of the end within milliseconds: a second DELETE
    would be counted within the second waited."""

    def deleted() -> int:
        return asyncio.run(kit_counts(kit_url))["sessions_deleted"].get("alice", 0)

    wait_for("the client's DELETE reaches the upstream", lambda: deleted() > 0, 20)
    time.sleep(1.0)
    assert deleted() == 1


def answered_by(cluster: Cluster) -> dict[str, int]:
    """HAProxy's count of 2xx answers per replica."""
    return {r["svname"]: int(r["hrsp_2xx"]) for r in cluster.stats()}


def session_status(port: int, session_id: str) -> int:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    headers = {
        "mcp-session-id": session_id,
        "mcp-protocol-version": "2025-11-25",
        "accept": "application/json, text/event-stream",
        "x-user": "alice",
    }
    return httpx2.post(f"http://127.0.0.1:{port}/mcp", json=body, headers=headers).status_code


def test_t1_t4_a_thousand_calls_round_robin_on_one_upstream_session(cluster):
    before = cluster.redis_commands()
    outcomes, session_id = asyncio.run(run_session(cluster.url))
    assert all(outcomes.values()), [t for t, ok in outcomes.items() if not ok][:10]
    after = cluster.redis_commands()
    delta = {c: n - before.get(c, 0) for c, n in after.items() if n != before.get(c, 0)}
    # A figure, not an assertion: Redis commands for the whole session of CALLS calls
    # (record write, the other replicas' first-sight restore, upstream publish and attach).
    print(f"Redis commands for {CALLS} calls over 3 replicas: {sum(delta.values())} {delta}")
    # Every replica answered some of them (HAProxy's own count of 2xx answers).
    answered = answered_by(cluster)
    print(f"HAProxy: {answered}")
    assert all(n > 0 for n in answered.values()), answered
    counts = asyncio.run(kit_counts(cluster.kit_url))
    assert len(counts["ticks"]) == CALLS and set(counts["ticks"].values()) == {1}
    assert_one_upstream_session(counts)
    # T4: the client's DELETE ends it on every replica.
    headers = {"mcp-session-id": session_id, "mcp-protocol-version": "2025-11-25"}
    assert httpx2.delete(cluster.url, headers=headers).status_code in (200, 202, 204)
    for port in cluster.ports:
        wait_for(f"404 on {port}", lambda: session_status(port, session_id) == 404, 20)
    assert_one_delete(cluster.kit_url)


def test_t2_a_replica_killed_and_another_restarted_mid_run_lose_only_the_killed_one_s_calls(
    tmp_path,
):
    """Replica 2 is killed (SIGKILL) at call 300 and started again at 500; replica 3 is
    restarted (SIGTERM, then started) from call 650 while calls go on. Only calls in flight
    on the killed replica may fail (as errors, never run twice: the testkit counts each
    tick's executions); the restart fails none (its `shutdown_delay` outlasts HAProxy's
    detection, as in T3); the session keeps its one upstream session."""
    cluster = Cluster(tmp_path, gateway='shutdown_delay = "2s"\n')
    try:
        restarting = {"done": None, "exit": None}

        def restart_third() -> None:
            restarting["exit"] = cluster.terminate(2)
            cluster.restart(2)

        async def chaos(n: int) -> None:
            if n == 300:
                cluster.kill(1)
            if n == 500:
                cluster.restart(1)
            if n == 650:
                restarting["done"] = asyncio.ensure_future(asyncio.to_thread(restart_third))
            if n == CALLS - 20 and restarting["done"] is not None:
                await asyncio.shield(restarting["done"])

        outcomes, _ = asyncio.run(run_session(cluster.url, chaos))
        failed = [t for t, ok in outcomes.items() if not ok]
        print(f"failed calls: {len(failed)} of {CALLS}; HAProxy: {answered_by(cluster)}")
        assert restarting["exit"] == 0
        assert len(failed) <= IN_FLIGHT, failed
        assert all(300 - IN_FLIGHT <= int(t[1:]) < 500 for t in failed), failed
        counts = asyncio.run(kit_counts(cluster.kit_url))
        ticks = counts["ticks"]
        assert all(n == 1 for n in ticks.values()), {t: n for t, n in ticks.items() if n != 1}
        assert all(ticks.get(t) == 1 for t, ok in outcomes.items() if ok)
        assert_one_upstream_session(counts)
    finally:
        cluster.close()


def test_t7_an_upstream_restart_is_one_re_initialize_across_the_replicas(cluster):
    async def restart_upstream() -> None:
        cluster.restart_kit()

    outcomes, _ = asyncio.run(run_session(cluster.url, between=restart_upstream))
    # A call sent on a pooled connection the killed upstream left behind fails as "may have
    # run" (not retried: the engine cannot know it did not run); at most the first wave.
    failed = [t for t, ok in outcomes.items() if not ok]
    print(f"failed calls: {len(failed)} of {CALLS}")
    assert len(failed) <= IN_FLIGHT and all(int(t[1:]) >= CALLS // 2 for t in failed), failed
    # The new process saw the second half only. Meant: one initialize for alice (the replica
    # that met the 404 first re-initializes under the claim, the others attach to it). Seen
    # now and then on a loaded machine: two, when a re-initialize went out on a pooled
    # connection the killed upstream left (it may have run, so the claim passes on); never
    # one per replica, which is what this asserts.
    counts = asyncio.run(kit_counts(cluster.kit_url))
    ticks = counts["ticks"]
    assert all(n == 1 for n in ticks.values()), {t: n for t, n in ticks.items() if n != 1}
    assert all(ticks.get(t) == 1 for t, ok in outcomes.items() if ok and int(t[1:]) >= CALLS // 2)
    created = counts["sessions_created"].get("alice")
    print(f"upstream sessions created for alice after the restart: {created}")
    assert created is not None and created < len(cluster.ports), counts["sessions_created"]


def test_t5_other_identities_and_forged_ids_are_refused_without_touching_redis(cluster):
    session_id = asyncio.run(run_session(cluster.url))[1]
    forged = session_id[:50] + ("A" if session_id[50] != "A" else "B") + session_id[51:]
    before = cluster.redis_commands()
    for port in cluster.ports:
        for user, sid in [("mallory", session_id), ("alice", forged), ("alice", "0" * 106)]:
            body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                    "params": {"name": "kit__tick", "arguments": {"id": "stolen"}}}
            headers = {"mcp-session-id": sid, "mcp-protocol-version": "2025-11-25",
                       "accept": "application/json, text/event-stream", "x-user": user}
            answer = httpx2.post(f"http://127.0.0.1:{port}/mcp", json=body, headers=headers)
            assert answer.status_code == 404, (port, user, answer.status_code)
    assert cluster.redis_commands() == before, "a refused id cost a Redis command"
    counts = asyncio.run(kit_counts(cluster.kit_url))
    assert "stolen" not in counts["ticks"]


def test_t3_a_rolling_restart_fails_no_call_and_keeps_the_upstream_session(tmp_path):
    """Each replica in turn gets SIGTERM, exits and is started again, while the session's calls
    go on. `shutdown_delay = "2s"` outlasts HAProxy's detection (2 failed /readyz checks 300 ms
    apart, later on a loaded machine), so HAProxy stops sending to a replica before it stops
    taking calls: no call may fail. (A request that still reaches a draining replica is
    refused before it runs: a closed listener, which HAProxy's `retry-on conn-failure` resends,
    or a 503. Runs with a delay of 300 ms failed a call now and then; a CI run with 1 s once
    did, on a loaded machine. The delay is for balancers that do not retry, like kube-proxy.)
    The replica leaving detaches from the upstream session (no DELETE), so the others and the
    restarted one go on with it: no `initialize` of the user's after the warm-up, and the
    testkit sees the DELETE only when the client sends it."""
    cluster = Cluster(tmp_path, gateway='shutdown_delay = "2s"\n')
    try:
        restarting = {"started": False, "done": None, "calls": 0, "exits": []}

        def roll() -> None:
            for index in range(len(cluster.ports)):
                restarting["exits"].append(cluster.terminate(index))
                cluster.restart(index)
                port = cluster.ports[index]
                wait_for(f"replica {port} ready", lambda: answers(f"http://127.0.0.1:{port}/readyz"))
                wait_for("haproxy sees it up", lambda: cluster.servers_up() == 3)

        warm = {}

        async def rolling(n: int) -> None:
            if n == 100:
                # After the warm-up (every replica has served the session): what the
                # restarts must not change.
                warm.update(await kit_counts(cluster.kit_url))
                restarting["done"] = asyncio.ensure_future(asyncio.to_thread(roll))
            if restarting["done"] is None:
                return
            if n >= CALLS - 50:
                # The last calls run after the last restart, on the three new processes.
                await asyncio.shield(restarting["done"])
            elif not restarting["done"].done():
                restarting["calls"] += 1
                await asyncio.sleep(0.05)  # stretch the calls over the restarts

        outcomes, session_id = asyncio.run(run_session(cluster.url, rolling))
        failed = [t for t, ok in outcomes.items() if not ok]
        print(
            f"failed calls: {len(failed)} of {CALLS}; {restarting['calls']} sent while "
            f"restarting; exits {restarting['exits']}; HAProxy: {answered_by(cluster)}"
        )
        assert restarting["exits"] == [0, 0, 0]
        assert restarting["calls"] > 0
        assert not failed, failed[:10]
        # The session goes on through each new process directly too.
        for port in cluster.ports:
            body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                    "params": {"name": "kit__tick", "arguments": {"id": f"after-{port}"}}}
            headers = {"mcp-session-id": session_id, "mcp-protocol-version": "2025-11-25",
                       "accept": "application/json, text/event-stream", "x-user": "alice"}
            answer = httpx2.post(f"http://127.0.0.1:{port}/mcp", json=body, headers=headers,
                                 timeout=30)
            assert answer.status_code == 200 and '"isError":true' not in answer.text, answer.text
        counts = asyncio.run(kit_counts(cluster.kit_url))
        ticks = counts["ticks"]
        assert len(ticks) == CALLS + len(cluster.ports) and set(ticks.values()) == {1}
        # No upstream session of alice's was DELETEd or lost: its next call on any replica
        # would have re-initialized (404 from the testkit), which sessions_created counts.
        print(f"alice's upstream sessions: {warm['sessions_created'].get('alice')} after the "
              f"warm-up, {counts['sessions_created'].get('alice')} at the end")
        created = counts["sessions_created"].get("alice")
        assert created == warm["sessions_created"].get("alice")
        assert_one_upstream_session(counts)
        # No upstream DELETE of the shared session before the client's.
        assert counts["sessions_deleted"].get("alice", 0) == 0, counts
        headers = {"mcp-session-id": session_id, "mcp-protocol-version": "2025-11-25"}
        assert httpx2.delete(cluster.url, headers=headers).status_code in (200, 202, 204)
        assert_one_delete(cluster.kit_url)
    finally:
        cluster.close()


def post(port: int, body: dict, session_id: str | None = None, user: str = "alice"):
    """One JSON-RPC message straight to replica `port` (not through HAProxy)."""
    headers = {"mcp-protocol-version": "2025-11-25", "x-user": user,
               "accept": "application/json, text/event-stream"}
    if session_id:
        headers["mcp-session-id"] = session_id
    return httpx2.post(f"http://127.0.0.1:{port}/mcp", json=body, headers=headers, timeout=30)


def initialize(port: int, user: str = "alice") -> httpx2.Response:
    return post(port, {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "t6", "version": "0"}}}, user=user)


def tick(port: int, session_id: str, tick_id: str, user: str = "alice") -> httpx2.Response:
    return post(port, {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                       "params": {"name": "kit__tick", "arguments": {"id": tick_id}}},
                session_id, user)


def ticked(answer: httpx2.Response, tick_id: str) -> bool:
    return answer.status_code == 200 and '"isError":true' not in answer.text \
        and tick_id in answer.text


def test_t6_redis_stopped_mid_run_then_started(tmp_path):
    """Redis (append-only file, as deploy/kubernetes has it) stopped between the two halves of
    a session's calls through HAProxy, then started again. While it is down: the session every
    replica has served goes on (all calls answered), a session a replica has not seen gets 503
    with `Retry-After` there, a new `initialize` fails naming the store, another user is still
    refused. After the start: the unseen session is served there, new sessions work."""
    cluster = Cluster(tmp_path, redis_aof=True)
    try:
        g1, g2, g3 = cluster.ports
        # Session B, seen by g1 only.
        opened = initialize(g1)
        assert opened.status_code == 200, opened.text
        b_id = opened.headers["mcp-session-id"]
        note = post(g1, {"jsonrpc": "2.0", "method": "notifications/initialized"}, b_id)
        assert note.status_code in (200, 202), note.text
        assert ticked(tick(g1, b_id, "b-before"), "b-before")
        down = {}

        async def stop_redis() -> None:
            cluster.stop_redis()
            unseen = tick(g2, b_id, "b-unseen")
            down["unseen"] = (unseen.status_code, unseen.headers.get("retry-after"))
            fresh = initialize(g3)
            down["fresh"] = (fresh.status_code, fresh.text[:300])
            down["other user"] = tick(g1, b_id, "b-mallory", user="mallory").status_code

        outcomes, a_id = asyncio.run(run_session(cluster.url, between=stop_redis))
        failed = [t for t, ok in outcomes.items() if not ok]
        print(f"while Redis was down: {down}; failed calls: {len(failed)} of {CALLS}")
        assert not failed, failed[:10]
        assert down["unseen"] == (503, "1"), down
        assert "session store unavailable" in down["fresh"][1], down
        assert down["other user"] == 404, down
        # A's calls of the second half ran on every replica with Redis down.
        assert all(n > 0 for n in answered_by(cluster).values())

        cluster.start_redis()
        wait_for("a new session", lambda: initialize(g3).status_code == 200)
        wait_for("B served on g2", lambda: ticked(tick(g2, b_id, "b-after"), "b-after"))
        for port in cluster.ports:
            assert ticked(tick(port, a_id, f"a-after-{port}"), f"a-after-{port}")
        counts = asyncio.run(kit_counts(cluster.kit_url))
        ticks = counts["ticks"]
        assert "b-unseen" not in ticks and "b-mallory" not in ticks
        assert all(n == 1 for n in ticks.values()), {t: n for t, n in ticks.items() if n != 1}
    finally:
        cluster.close()


K2 = "2=YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY=\n"


def test_t8_a_key_rotation_keeps_sessions_and_dropping_the_old_key_ends_them(tmp_path):
    """Key rotation as a.3 documents it, three rolling updates of the keyring: (1) K2 added
    as secondary, (2) K2 made primary (K1 secondary), (3) K1 dropped. Redis key names are
    HMACs under the primary key, so step 2 renames every key: the replicas look under every
    key's name and move what they find (switchboard-redis `keys.rs`). Calls run after each
    replica's restart, so replicas with different primaries serve the session side by side.
    Through steps 1 and 2 alice's session keeps working on its one upstream session (no
    `initialize` of alice's after the first, no failed call), and a new session (bob's) works
    after the rotation. Before step 3, `switchboard rekey` moves what no one read since (carol's
    session record); step 3 makes K1's ids unknown: the old session id is refused with 404 on
    every replica and the client initializes again."""
    cluster = Cluster(tmp_path)
    keys = tmp_path / "keys"
    try:
        failures: list[str] = []

        async def calls(session: ClientSession, label: str, n: int = 6) -> None:
            for i in range(n):
                tick = f"{label}-{i}"
                try:
                    result = await asyncio.wait_for(
                        session.call_tool("kit__tick", {"id": tick}), 30
                    )
                    if result.is_error:
                        failures.append(f"{tick}: {result.model_dump_json()[:300]}")
                except Exception as error:  # a failed request, as the client sees it
                    failures.append(f"{tick}: {type(error).__name__}: {error}")

        async def roll(session: ClientSession, label: str) -> None:
            """Each replica in turn stopped and started again (reading the keyring anew),
            with calls through HAProxy after each."""
            for index, port in enumerate(cluster.ports):
                assert await asyncio.to_thread(cluster.terminate, index) == 0
                cluster.restart(index)
                await asyncio.to_thread(
                    wait_for, f"replica {port} ready",
                    lambda: answers(f"http://127.0.0.1:{port}/readyz"),
                )
                await asyncio.to_thread(
                    wait_for, "haproxy sees it up", lambda: cluster.servers_up() == 3
                )
                await calls(session, f"{label}-{index}")

        async def rotate() -> str:
            session_id = {"id": None}

            async def remember(response: httpx2.Response) -> None:
                if response.headers.get("mcp-session-id"):
                    session_id["id"] = response.headers["mcp-session-id"]

            http = create_mcp_http_client(headers={"X-User": "alice"})
            http.event_hooks = {"request": [], "response": [remember]}
            async with http, streamable_http_client(
                cluster.url, http_client=http, terminate_on_close=False
            ) as s, ClientSession(s[0], s[1]) as session:
                await session.initialize()
                await calls(session, "warm", 9)
                keys.write_text(KEYS + K2)
                await roll(session, "k2-secondary")
                keys.write_text(K2 + KEYS)
                await roll(session, "k2-primary")
                await calls(session, "rotated", 9)
            return session_id["id"]

        carol = initialize(cluster.ports[0], user="carol")
        assert carol.status_code == 200, carol.text
        answer = tick(cluster.ports[1], carol.headers["mcp-session-id"], "carol", user="carol")
        assert ticked(answer, "carol"), answer.text
        session_id = asyncio.run(rotate())
        assert not failures, failures[:10]
        counts = asyncio.run(kit_counts(cluster.kit_url))
        assert_one_upstream_session(counts)

        # A session made after the rotation (sealed with K2, named under K2) works.
        bob = initialize(cluster.ports[0], user="bob")
        assert bob.status_code == 200, bob.text
        bob_id = bob.headers["mcp-session-id"]
        for port in cluster.ports:
            answer = tick(port, bob_id, f"bob-{port}", user="bob")
            assert ticked(answer, f"bob-{port}"), answer.text

        # Before step 3: what is still under K1's names (carol's record, unread since the
        # rotation; alice's if a replica with K1 primary moved it back during step 2's roll)
        # moves, and a second run finds nothing.
        def rekey() -> str:
            run = subprocess.run(
                [str(BIN / "switchboard"), "rekey", "--config", "switchboard.toml"],
                cwd=tmp_path, capture_output=True, text=True, timeout=60,
                env=dict(os.environ, SWITCHBOARD_REDIS_URL=cluster.redis_url),
            )
            assert run.returncode == 0, run.stdout + run.stderr
            return run.stdout.strip()

        first = rekey()
        print("rekey:", first)
        moved = int(first.split(": ")[1].split(" ")[0])
        assert 1 <= moved <= 2, first
        second = rekey()
        assert second.startswith("moved to key 2: 0 session records, 0 OAuth tokens"), second

        # Step 3: K1 dropped. Its ids are unknown: 404, and the client starts again.
        keys.write_text(K2)
        for index, port in enumerate(cluster.ports):
            assert cluster.terminate(index) == 0
            cluster.restart(index)
            wait_for(f"replica {port} ready", lambda: answers(f"http://127.0.0.1:{port}/readyz"))
        for port in cluster.ports:
            assert session_status(port, session_id) == 404, port
        again = initialize(cluster.ports[1])
        assert again.status_code == 200, again.text
        again_id = again.headers["mcp-session-id"]
        answer = tick(cluster.ports[2], again_id, "again")
        assert ticked(answer, "again"), answer.text
        for port in cluster.ports:
            answer = tick(port, bob_id, f"bob-after-{port}", user="bob")
            assert ticked(answer, f"bob-after-{port}"), answer.text
    finally:
        cluster.close()
