#!/usr/bin/env python3
"""The client side of the MCP conformance suite (`conformance client --command ...`).

The suite runs `driver.py URL` with MCP_CONFORMANCE_SCENARIO (and, for some scenarios,
MCP_CONFORMANCE_CONTEXT, a JSON object) in the environment, then judges what its scenario
server saw. This script only maps a scenario to `switchboard` commands against that one URL:
every protocol step (lifecycle probe and fallback, tools/list, tools/call, headers, SSE
resumption, schema handling) is done by the real CLI, never here. A command that fails makes
the driver exit non-zero, which the suite counts as a failure.

Scenarios that need something Switchboard does not do yet (resources and prompts, skills)
still run the closest commands.

SWITCHBOARD_BIN overrides the binary (default: target/debug/switchboard of this repo).
"""

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = os.environ.get("SWITCHBOARD_BIN") or str(REPO / "target" / "debug" / "switchboard")
# Every command of a scenario together must end before the suite's 30 s timeout, so that a
# hung command fails here, named on stderr, and leaves no process behind.
DEADLINE = time.monotonic() + float(os.environ.get("DRIVER_BUDGET_S", "25"))


class StepFailed(Exception):
    pass


def sb(url, *args, check=True, config=None, env=None):
    """Runs `switchboard ARGS --url URL` (or `--config CONFIG`, a file naming the server),
    with `env` added to the environment; returns its stdout. Raises StepFailed on a non-zero
    exit when check is set."""
    cmd = [BIN, *args, *(["--config", str(config)] if config else ["--url", url])]
    log("$ " + " ".join(cmd))
    budget = DEADLINE - time.monotonic()
    if budget <= 0:
        raise StepFailed(f"no time left for: {' '.join(args)}")
    try:
        done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=budget, stdin=subprocess.DEVNULL,
                              env=dict(os.environ, **(env or {})))
    except subprocess.TimeoutExpired:
        raise StepFailed(f"timed out (driver budget): {' '.join(args)}")
    if done.stdout.strip():
        log(done.stdout.rstrip())
    if done.stderr.strip():
        log(done.stderr.rstrip())
    if check and done.returncode != 0:
        raise StepFailed(f"exit {done.returncode}: {' '.join(args)}")
    return done.stdout


def log(text):
    print(text, file=sys.stderr, flush=True)


def tools(url):
    """The tools the CLI exposes for this server: {tool's own name: ExposedTool JSON}."""
    listed = json.loads(sb(url, "tools", "--format", "json", "--json-style", "compact"))
    return {tool["tool"]: tool for tool in listed["tools"]}


def call(url, name, arguments, *extra, check=True, config=None, env=None):
    """Calls a tool by its own name (the CLI accepts it: one server has it)."""
    return sb(url, "call", name, json.dumps(arguments), "--json", "--json-style", "compact",
              *extra, check=check, config=config, env=env)


def toml_string(value):
    """A TOML basic string (JSON's escapes are TOML's for these values)."""
    return json.dumps(value)


def auth_call(url, scenario, context):
    """Auth scenarios with a mapping: a config whose [auth] table is built from the
    scenario's context, a private state directory for the token store, then
    `call test-tool` (connect, list, call: every OAuth step is the CLI's). The secret goes
    through the environment (${env:...}), the private key through a 0600 file."""
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        client_id = f"client_id = {toml_string(context['client_id'])}"
        env = {"SWITCHBOARD_STATE_DIR": str(scratch / "state")}
        if scenario == "auth/client-credentials-basic":
            auth = ['kind = "client_credentials"', client_id,
                    'client_secret = "${env:CONFORMANCE_CLIENT_SECRET}"']
            env["CONFORMANCE_CLIENT_SECRET"] = context["client_secret"]
        elif scenario == "auth/client-credentials-jwt":
            key = scratch / "client-key.pem"
            key.touch(mode=0o600)
            key.write_text(context["private_key_pem"])
            auth = ['kind = "client_credentials"', client_id,
                    f"private_key_file = {toml_string(str(key))}"]
        elif scenario == "auth/wif-jwt-bearer":
            # The workload's JWT as a platform hands it over: a file (re-read per exchange).
            jwt = scratch / "workload.jwt"
            jwt.touch(mode=0o600)
            jwt.write_text(context["valid_jwt"])
            auth = ['kind = "jwt_bearer"', client_id,
                    f"assertion_file = {toml_string(str(jwt))}"]
        else:  # enterprise-managed authorization (both names)
            auth = ['kind = "enterprise"', client_id,
                    'client_secret = "${env:CONFORMANCE_CLIENT_SECRET}"',
                    'id_token = "${env:CONFORMANCE_ID_TOKEN}"',
                    f"idp_token_endpoint = {toml_string(context['idp_token_endpoint'])}",
                    f"idp_client_id = {toml_string(context['idp_client_id'])}"]
            env["CONFORMANCE_CLIENT_SECRET"] = context["client_secret"]
            env["CONFORMANCE_ID_TOKEN"] = context["idp_id_token"]
        config = scratch / "switchboard.toml"
        config.write_text(f"[servers.conformance]\nurl = {toml_string(url)}\n"
                          "[servers.conformance.auth]\n" + "\n".join(auth) + "\n")
        call(url, "test-tool", {}, config=config, env=env)


# Auth scenarios with a machine identity (no browser), their [auth] table from the context.
AUTH_MAPPED = ("auth/client-credentials-basic", "auth/client-credentials-jwt",
               "auth/wif-jwt-bearer", "auth/cross-app-access-complete-flow",
               "auth/enterprise-managed-authorization")

# The interactive sign-in (docs/oauth-design.md section (c)): `call test-tool --login` with
# SWITCHBOARD_BROWSER set to this script's --open, which plays the browser.
AUTH_INTERACTIVE = (
    "auth/metadata-default", "auth/metadata-var1", "auth/metadata-var2", "auth/metadata-var3",
    "auth/basic-cimd", "auth/scope-from-www-authenticate", "auth/scope-from-scopes-supported",
    "auth/scope-omitted-when-undefined", "auth/scope-step-up", "auth/scope-retry-limit",
    "auth/token-endpoint-auth-basic", "auth/token-endpoint-auth-post",
    "auth/token-endpoint-auth-none", "auth/pre-registration", "auth/resource-mismatch",
    "auth/offline-access-scope", "auth/offline-access-not-supported",
    "auth/authorization-server-migration", "auth/iss-supported", "auth/iss-not-advertised",
    "auth/iss-supported-missing", "auth/iss-wrong-issuer", "auth/iss-unexpected",
    "auth/iss-normalized", "auth/metadata-issuer-mismatch",
    "auth/2025-03-26-oauth-metadata-backcompat", "auth/2025-03-26-oauth-endpoint-fallback",
    "auth/dpop", "auth/dpop-nonce",
)
# Scenarios where the client is meant to refuse (the suite allows a failing exit).
AUTH_REFUSING = (
    "auth/resource-mismatch", "auth/iss-supported-missing", "auth/iss-wrong-issuer",
    "auth/iss-unexpected", "auth/iss-normalized", "auth/metadata-issuer-mismatch",
    "auth/scope-retry-limit",
)
# The client metadata document URL the reference client uses in every interactive scenario.
CIMD_URL = "https://conformance-test.local/client-metadata.json"


def auth_interactive(url, scenario, context):
    """A config with an [auth] table (pre-registered client from the context, else the
    CIMD URL, which the CLI uses only where the server supports it, else it registers), a
    private token store, and `call test-tool --login` whose browser is `driver.py --open`."""
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        auth = ['kind = "oauth"']
        env = {"SWITCHBOARD_STATE_DIR": str(scratch / "state"),
               "SWITCHBOARD_BROWSER": f"{sys.executable} {Path(__file__).resolve()} --open %s"}
        if context.get("client_id"):
            auth.append(f"client_id = {toml_string(context['client_id'])}")
            if context.get("client_secret"):
                auth.append('client_secret = "${env:CONFORMANCE_CLIENT_SECRET}"')
                env["CONFORMANCE_CLIENT_SECRET"] = context["client_secret"]
        else:
            auth.append(f"client_metadata_url = {toml_string(CIMD_URL)}")
        config = scratch / "switchboard.toml"
        config.write_text(f"[servers.conformance]\nurl = {toml_string(url)}\n"
                          "[servers.conformance.auth]\n" + "\n".join(auth) + "\n")
        call(url, "test-tool", {}, "--login", config=config, env=env,
             check=scenario not in AUTH_REFUSING)


def open_in_browser(url):
    """`driver.py --open URL`: what a browser does for the suite's authorization server,
    which answers at once with a redirect to the CLI's loopback callback: GET it and follow
    the redirect (no proxy: everything is on loopback)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=20) as answer:
            log(f"driver --open: {answer.status} from the callback")
    except Exception as e:  # the flow then fails on its own, with its reason
        log(f"driver --open: {e}")


def sample_arguments(schema):
    """Arguments for a tool's required properties, typed from its schema (for scenarios that
    only watch which tools are called)."""
    samples = {"string": "us-west1", "integer": 1, "number": 1.5, "boolean": True,
               "object": {}, "array": [], "null": None}
    properties = schema.get("properties") or {}
    return {name: samples.get((properties.get(name) or {}).get("type"), "x")
            for name in schema.get("required") or []}


def run(scenario, url, context):
    if scenario in ("initialize", "request-metadata") or scenario.startswith("sep-2640-"):
        # A connection and tools/list. (sep-2640 skills: the CLI has no skills/list, so the
        # closest thing is connecting and listing.)
        tools(url)
    elif scenario == "tools_call":
        call(url, "add_numbers", {"a": 2, "b": 3})
    elif scenario == "sse-retry":
        # The server closes the call's SSE stream after a priming event; the answer comes on
        # a resumed GET stream.
        call(url, "test_reconnection", {}, "--timeout", "15s")
    elif scenario == "elicitation-sep1034-client-defaults":
        # The server asks for a form during the call; the server's elicitation policy
        # (`accept_defaults`, set in a config file) answers with the schema's defaults.
        with tempfile.TemporaryDirectory() as scratch:
            config = Path(scratch) / "switchboard.toml"
            config.write_text(
                f'[servers.conformance]\nurl = "{url}"\nelicitation = "accept_defaults"\n'
            )
            call(url, "test_client_elicitation_defaults", {}, config=config)
    elif scenario == "sep-2322-client-request-state":
        # Multi round-trip requests: two tools answer input_required (with and without
        # requestState); the CLI answers and sends the call again.
        failures = []
        for name in ("test_mrtr_echo_state", "test_mrtr_no_state", "test_mrtr_unrelated",
                     "test_mrtr_no_result_type"):
            try:
                call(url, name, {})
            except StepFailed as e:
                failures.append(str(e))
        if failures:
            raise StepFailed("; ".join(failures))
    elif scenario == "http-standard-headers":
        # Mcp-Method on every POST, Mcp-Name on tools/call (resources and prompts: no CLI
        # command, so those checks stay SKIPPED).
        tools(url)
        call(url, "test_headers", {})
        call(url, "my-hyphenated-tool", {})
    elif scenario == "http-custom-headers":
        # The context names the calls; x-mcp-header parameters must be mirrored as
        # Mcp-Param-* headers.
        for step in context["toolCalls"]:
            call(url, step["name"], step["arguments"])
    elif scenario == "http-invalid-tool-headers":
        # Tools with malformed x-mcp-header annotations must be excluded from the catalogue;
        # call every tool the CLI lists: the server sees which ones got through.
        listed = tools(url)
        if not listed:
            raise StepFailed("no tool listed")
        for name, tool in listed.items():
            call(url, name, sample_arguments(tool["input_schema"]))
    elif scenario == "json-schema-ref-no-deref":
        # The schema's network $ref must never be fetched: not when listing, describing, or
        # checking arguments before a call. The scenario server has no tools/call, so the
        # call's own outcome is not judged.
        tools(url)
        sb(url, "tools", "--describe", "lookup_user")
        call(url, "lookup_user", {"id": "user-1"}, check=False)
    elif scenario == "json-schema-2020-12-preservation":
        # Echo the focal tool's inputSchema, as the CLI received it, back to the server.
        schema = tools(url)["json_schema_2020_12_tool"]["input_schema"]
        call(url, "json_schema_echo", {"schema": schema})
    elif scenario in AUTH_MAPPED:
        auth_call(url, scenario, context)
    elif scenario in AUTH_INTERACTIVE:
        auth_interactive(url, scenario, context)
    elif scenario.startswith("auth/"):
        # Interactive sign-in and the other grants are not built yet (baselined): connect
        # and list, which meets the server's demand for authorization and fails.
        tools(url)
    else:
        # An unknown (new) scenario: connect and list, and say so.
        log(f"driver: no mapping for scenario {scenario!r}; listing tools only")
        tools(url)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--open":
        open_in_browser(sys.argv[2])
        return
    if len(sys.argv) < 2:
        sys.exit("usage: driver.py [ARGS...] SERVER_URL (run by `conformance client`)")
    url = sys.argv[-1]
    scenario = os.environ.get("MCP_CONFORMANCE_SCENARIO", "")
    context = json.loads(os.environ.get("MCP_CONFORMANCE_CONTEXT") or "{}")
    log(f"driver: scenario={scenario} url={url} "
        f"version={os.environ.get('MCP_CONFORMANCE_PROTOCOL_VERSION', '-')}")
    if not os.access(BIN, os.X_OK):
        sys.exit(f"driver: no switchboard binary at {BIN} (cargo build -p switchboard-cli)")
    try:
        run(scenario, url, context)
    except StepFailed as e:
        log(f"driver: {scenario}: {e}")
        sys.exit(1)


if __name__ == "__main__":
    main()
