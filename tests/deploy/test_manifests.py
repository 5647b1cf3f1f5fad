"""deploy/kubernetes/: schema validation (kubernetes-validate --strict, offline, against the
oldest and newest Kubernetes minors we promise) and the cross-references no schema checks:
selectors that match the pods, probes that hit the gateway's endpoints on its port, a grace
period that covers the gateway's shutdown. The ConfigMap's TOML is loaded by the gateway's own
loader in crates/switchboard-gateway/tests/it/deploy.rs."""

import pathlib
import re
import shlex
import shutil
import subprocess
import sys
import time
import tomllib

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "deploy" / "kubernetes"
# The oldest Kubernetes minor docs/deploy.md promises, and the newest the validator bundles.
KUBERNETES_VERSIONS = ["1.32.0", "1.37.0"]


def documents():
    """Every Kubernetes object in deploy/kubernetes/ (the kustomization is kustomize's)."""
    for path in sorted(MANIFESTS.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                yield path.name, doc


def one(kind, name=None):
    found = [d for _, d in documents() if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    assert len(found) == 1, f"one {kind} {name or ''}: {len(found)}"
    return found[0]


def seconds(duration):
    """A gateway duration ("5s", "30s", "2m", "500ms") in seconds."""
    match = re.fullmatch(r"(\d+)(ms|s|m|h)", duration.strip())
    assert match, f"a duration this test reads: {duration!r}"
    value, unit = int(match[1]), match[2]
    return value * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]


def gateway_config():
    return tomllib.loads(one("ConfigMap", "switchboard")["data"]["switchboard.toml"])


def gateway_container():
    pod = one("Deployment", "switchboard")["spec"]["template"]["spec"]
    (container,) = [c for c in pod["containers"] if c["name"] == "switchboard"]
    return pod, container


def matches(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_passes_the_kubernetes_schemas_strictly(version):
    files = sorted(str(p) for p in MANIFESTS.glob("*.yaml") if p.name != "kustomization.yaml")
    run = subprocess.run(
        [sys.executable, "-m", "kubernetes_validate", "--strict", "--quiet", "-k", version, *files],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_kustomization_lists_every_manifest_but_the_example_secret():
    listed = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())["resources"]
    present = {p.name for p in MANIFESTS.glob("*.yaml")} - {"kustomization.yaml", "secret.example.yaml"}
    assert sorted(listed) == sorted(present)


def test_selectors_match_the_gateway_pods():
    deployment = one("Deployment", "switchboard")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    own = deployment["spec"]["selector"]["matchLabels"]
    assert matches(own, labels)
    assert matches(one("Service", "switchboard")["spec"]["selector"], labels)
    assert matches(one("PodDisruptionBudget", "switchboard")["spec"]["selector"]["matchLabels"], labels)
    target = one("HorizontalPodAutoscaler", "switchboard")["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == ("apps/v1", "Deployment", "switchboard")
    # Redis' selectors select Redis, not the gateway.
    redis = one("StatefulSet", "redis")
    redis_labels = redis["spec"]["template"]["metadata"]["labels"]
    assert matches(redis["spec"]["selector"]["matchLabels"], redis_labels)
    assert matches(one("Service", "redis")["spec"]["selector"], redis_labels)
    assert not matches(one("Service", "switchboard")["spec"]["selector"], redis_labels)
    assert redis["spec"]["serviceName"] == "redis"
    # Only the gateway reaches Redis, on the port Redis listens on.
    policy = one("NetworkPolicy", "redis")["spec"]
    assert matches(policy["podSelector"]["matchLabels"], redis_labels)
    (rule,) = policy["ingress"]
    (peer,) = rule["from"]
    assert matches(peer["podSelector"]["matchLabels"], labels)
    redis_port = redis["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"]
    assert [p["port"] for p in rule["ports"]] == [redis_port]


def test_probes_hit_the_gateway_probes_on_its_listening_port():
    _, container = gateway_container()
    listen_port = int(gateway_config()["gateway"]["listen"].rsplit(":", 1)[1])
    (port,) = container["ports"]
    assert port["containerPort"] == listen_port
    # The paths the gateway serves (crates/switchboard-gateway/src/rest.rs).
    rest = (ROOT / "crates/switchboard-gateway/src/rest.rs").read_text()
    for path in ("/readyz", "/healthz"):
        assert f'.route("{path}"' in rest, path
    probes = {kind: container[kind]["httpGet"] for kind in ("startupProbe", "readinessProbe", "livenessProbe")}
    assert probes["startupProbe"]["path"] == "/readyz"
    assert probes["readinessProbe"]["path"] == "/readyz"
    assert probes["livenessProbe"]["path"] == "/healthz"
    for kind, probe in probes.items():
        assert probe["port"] in (port["name"], listen_port), kind
    service_port = one("Service", "switchboard")["spec"]["ports"][0]
    assert service_port["targetPort"] in (port["name"], listen_port)


def test_the_grace_period_covers_the_delay_the_drain_and_closing():
    gateway = gateway_config()["gateway"]
    pod, _ = gateway_container()
    needed = seconds(gateway["shutdown_delay"]) + seconds(gateway["drain_timeout"]) + 10
    assert pod["terminationGracePeriodSeconds"] >= needed
    # No preStop hook: the gateway's shutdown_delay does its job without a shell in the image.
    _, container = gateway_container()
    assert "lifecycle" not in container


def test_rollouts_keep_every_replica_serving():
    deployment = one("Deployment", "switchboard")
    strategy = deployment["spec"]["strategy"]
    assert strategy["type"] == "RollingUpdate"
    assert strategy["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    replicas = deployment["spec"]["replicas"]
    hpa = one("HorizontalPodAutoscaler", "switchboard")["spec"]
    assert hpa["minReplicas"] == replicas
    assert one("PodDisruptionBudget", "switchboard")["spec"]["minAvailable"] < replicas


def test_containers_run_locked_down():
    for name, doc in documents():
        if doc["kind"] not in ("Deployment", "StatefulSet"):
            continue
        pod = doc["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["automountServiceAccountToken"] is False, name
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            assert "memory" in container["resources"]["limits"], name
            assert "cpu" in container["resources"]["requests"], name


def test_secrets_come_from_the_secret_the_example_describes():
    secret_keys = set(one("Secret", "switchboard")["stringData"])
    pod, container = gateway_container()
    refs = [e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e]
    (keys_volume,) = [v for v in pod["volumes"] if "secret" in v]
    redis_env = one("StatefulSet", "redis")["spec"]["template"]["spec"]["containers"][0]["env"]
    refs += [e["valueFrom"]["secretKeyRef"] for e in redis_env if "valueFrom" in e]
    for ref in refs:
        assert ref["name"] == "switchboard" and ref["key"] in secret_keys, ref
    assert keys_volume["secret"]["secretName"] == "switchboard"
    assert {i["key"] for i in keys_volume["secret"]["items"]} <= secret_keys
    # The ConfigMap's [scale] keys_file is the Secret's `keyring` item where the pod mounts
    # it, and its redis_url_env is a variable the container gets from the Secret.
    scale = tomllib.loads(one("ConfigMap", "switchboard")["data"]["switchboard.toml"])["scale"]
    assert scale["store"] == "redis"
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == keys_volume["name"]]
    keyring_items = [i for i in keys_volume["secret"]["items"] if i["key"] == "keyring"]
    assert [f'{mount["mountPath"]}/{i["path"]}' for i in keyring_items] == [scale["keys_file"]]
    (url_env,) = [e for e in container["env"] if e["name"] == scale["redis_url_env"]]
    assert url_env["valueFrom"]["secretKeyRef"]["key"] == "redis-url"


def test_the_service_has_no_affinity_since_any_replica_serves_any_session():
    assert "sessionAffinity" not in one("Service", "switchboard")["spec"]


def redis_script() -> tuple[list[str], str]:
    """The Redis container's `redis-server` words (its script's first line) and the script."""
    container = one("StatefulSet", "redis")["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["sh", "-c"]
    script = container["args"][0]
    return shlex.split(script.splitlines()[0]), script


def test_redis_keeps_an_append_only_file_on_its_volume():
    redis = one("StatefulSet", "redis")["spec"]
    args, _ = redis_script()
    assert args[args.index("--appendonly") + 1] == "yes"
    data_dir = args[args.index("--dir") + 1]
    mounts = redis["template"]["spec"]["containers"][0]["volumeMounts"]
    claims = {c["metadata"]["name"] for c in redis["volumeClaimTemplates"]}
    assert any(m["mountPath"] == data_dir and m["name"] in claims for m in mounts)


@pytest.mark.skipif(not shutil.which("redis-server"), reason="needs redis-server")
def test_redis_takes_its_password_from_the_secret_and_not_in_argv(tmp_path):
    """The container's own script, run with Debian's redis-server (its data dir and port
    moved to a temporary directory and a unix socket), asks for the Secret's password. The
    password is not in the container's arguments: Kubernetes expands `$(VAR)` in args before
    the container starts, into the runtime's container config on the node; the shell's
    `$VAR` is read inside the container."""
    container = one("StatefulSet", "redis")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]}
    assert env["REDIS_PASSWORD"] == {"name": "switchboard", "key": "redis-password"}
    _, script = redis_script()
    assert "$(REDIS_PASSWORD)" not in " ".join(container["args"]), container["args"]
    assert "--requirepass" not in script, script
    sock = tmp_path / "redis.sock"
    script = script.replace("--dir /data", f"--dir {tmp_path} --port 0 --unixsocket {sock}")
    password = "Pw" + "0123456789abcdef" * 2
    server = subprocess.Popen(
        ["sh", "-c", script], env={"PATH": "/usr/bin:/bin", "REDIS_PASSWORD": password},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not sock.exists():
            assert time.monotonic() < deadline and server.poll() is None, "redis did not start"
            time.sleep(0.05)

        def cli(*words: str) -> str:
            return subprocess.run(
                ["redis-cli", "-s", str(sock), *words], capture_output=True, text=True
            ).stdout.strip()

        assert "NOAUTH" in cli("PING")
        assert cli("--no-auth-warning", "--pass", password, "PING") == "PONG"
    finally:
        server.kill()
        server.wait()