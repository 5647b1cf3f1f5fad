//! The text `--help` prints after the options: where servers come from, exit codes and an
//! example for each command.

pub const MAIN: &str = "\
Where servers come from: --config FILE (Switchboard TOML, or a Claude Desktop / Cursor /
VS Code JSON file), or one server with --url URL or --stdio COMMAND. With none of these:
./switchboard.toml when it exists, else a built-in demo server (echo, add, now), and stderr
says so.

Exit codes:
  tools  0 listed; 1 every server failed; 2 bad input or config
  call   0 the tool succeeded; 1 the tool or its server failed; 2 bad input or config
  check  0 healthy; 3 degraded; 1 unhealthy; 2 bad config
  resources, prompts  0 listed; 1 no server could answer; 2 bad input or config
  read, prompt  0 done; 1 the server failed; 2 bad input (no such resource or prompt,
         missing arguments) or config
  serve  0 stopped by SIGTERM or ctrl-c; 1 the HTTP server failed; 2 bad config, the
         address is in use, or beyond loopback without [gateway.auth]
  A server whose on_server_registration_error is fail_fast and fails exits 1 in every
  command.

Examples:
  switchboard tools
  switchboard call demo__echo '{\"message\":\"hi\"}'
  switchboard check --config ~/.cursor/mcp.json
  switchboard read 'files+file:///tmp/notes.txt'
  switchboard prompt everything__args-prompt city=Paris";

pub const AUTH: &str = "\
OAuth sign-ins are kept per server in the state directory ($SWITCHBOARD_STATE_DIR, else
$XDG_STATE_HOME/switchboard, else ~/.local/state/switchboard), files readable by you only.
tools, call, resources, read, prompts and prompt also sign in when a server asks: at a
terminal, or with --login (never with --no-login). The sign-in URL goes to
$SWITCHBOARD_BROWSER, else $BROWSER (':'-separated commands; %s is the URL), else the
desktop's opener, and is printed on stderr.

Exit codes: 0 done; 1 the sign-in or the store failed; 2 bad input or config.

Examples:
  switchboard auth login github --config switchboard.toml
  switchboard auth status --format json
  switchboard auth logout github";

pub const TOOLS: &str = "\
Exit codes: 0 listed (servers that failed are named on stderr); 1 every server failed, or a
fail_fast server did; 2 bad input or config (no enabled server; for --describe, no tool of
that name).

Examples:
  switchboard tools --config ~/.cursor/mcp.json --format openai
  switchboard tools --describe demo__add";

pub const CALL: &str = "\
Exit codes: 0 the tool succeeded; 1 the tool reported failure, the call failed or timed out,
or the tool's server could not be connected; 2 bad input or config (JSON that is not an
object, arguments the tool's schema rejects: nothing is sent, no tool of that name).

A SERVER__TOOL name connects only that server.

When the server asks for input during the call (a form, a URL to open) and stdin and stderr
are a terminal, you are asked; otherwise the server's `elicitation` setting answers (decline
by default). Requests for an LLM completion (sampling) are declined. Progress the server
reports is shown on one line of stderr while the call runs (on a terminal only).

Examples:
  switchboard call demo__add '{\"a\": 2, \"b\": 3}'
  switchboard call demo__echo @args.json --timeout 5s
  echo '{\"message\":\"hi\"}' | switchboard call demo__echo -";

pub const CHECK: &str = "\
Exit codes: 0 healthy (every enabled server ready); 3 degraded (some ready, some not); 1
unhealthy (none ready), or a fail_fast server failed; 2 bad config (no enabled server
included).

Example:
  switchboard check --config switchboard.toml --format json";

pub const RESOURCES: &str = "\
Resources are listed under their exposed URI: the server's name, '+', and the server's own
URI (files+file:///tmp/a.txt); templates the same way (kit+testkit://items/{id}). A single
--url/--stdio server's own URIs are shown instead. Servers without resources list none.

Exit codes: 0 listed (servers that failed are named on stderr); 1 no server could answer;
2 bad input or config.

Examples:
  switchboard resources --config switchboard.toml
  switchboard resources --format json";

pub const READ: &str = "\
Text parts are printed as they are; binary parts are named with their MIME type and size
(stderr); --json prints every part, binary ones as base64. A SERVER+URI connects only that
server.

Exit codes: 0 read; 1 the server failed or timed out; 2 bad input or config (no server or
resource of that URI).

Examples:
  switchboard read 'kit+testkit://static/hello.txt'
  switchboard read 'kit+testkit://items/42' --json";

pub const PROMPTS: &str = "\
Prompts are listed under their exposed name (SERVER__PROMPT) with their arguments
([optional] ones in brackets).

Exit codes: 0 listed (servers that failed are named on stderr); 1 no server could answer;
2 bad input or config.

Example:
  switchboard prompts --format json";

pub const PROMPT: &str = "\
Messages are printed as 'role: text'; other content blocks are named (--json shows them).

Exit codes: 0 got it; 1 the server failed or timed out; 2 bad input or config (no prompt
of that name, arguments the server refuses, e.g. a required one missing).

Examples:
  switchboard prompt kit__greet name=Ada style=warm
  switchboard prompt kit__greet '{\"name\": \"Ada\"}'";

pub const SERVE: &str = "\
Endpoints: /mcp (MCP over Streamable HTTP: 2025-11-25 sessions and 2026-07-28 requests),
/v1/tools?format=json|openai|openai-responses|anthropic, POST /v1/tools/NAME/call (body: the
arguments as a JSON object), /v1/health, /healthz, /readyz. The log says where each listens.

[gateway] in the config: listen = \"127.0.0.1:8080\", shutdown_delay = \"5s\" (after SIGTERM,
/readyz says 503 and requests are still served this long; default 0s), drain_timeout = \"30s\"
(how long SIGTERM then waits for calls in flight), session_idle_timeout = \"5m\" (a
downstream session without requests ends), session_headers = { \"X-Upstream-Token\" =
\"user_token\" } (a request's X-Upstream-Token becomes the session variable user_token,
for per_session servers' headers: Authorization = \"Bearer ${user_token}\"). Security
(docs/gateway.md): allowed_hosts, allowed_origins, max_body = \"4MiB\",
max_concurrent_calls_per_session = 64;
[gateway.auth] api_keys = { NAME = \"SHA-256 hex\" } (printf %s KEY | sha256sum) and/or
[gateway.auth.jwt] jwks_url, issuer, audience, required_scopes. Listening beyond loopback
needs [gateway.auth] (or allow_unauthenticated = true behind an authenticating proxy).

Exit codes: 0 stopped by SIGTERM or ctrl-c; 1 the HTTP server failed, or a fail_fast server
did; 2 bad config, the address is in use, or beyond loopback without authentication.

Examples:
  switchboard serve
  switchboard serve --config servers.toml --listen 0.0.0.0:8080";
