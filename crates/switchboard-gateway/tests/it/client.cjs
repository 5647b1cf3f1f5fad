// A downstream MCP client for the gateway's tests: the official TypeScript SDK's Client
// over its Streamable HTTP transport (`@modelcontextprotocol/sdk`, pinned in
// tests/package.json; run with NODE_PATH=tests/node_modules).
//
// Usage: node client.cjs '<program JSON>'
//   {"url": "...", "headers": {...}, "steps": [STEP, ...]}
// Steps, each answered by one JSON line on stdout, in order:
//   {"op": "list"}                         -> {"tools": [names]}
//   {"op": "call", "name", "arguments"}    -> the CallToolResult, or {"error", "code"}
//   {"op": "wait_list_changed"}            -> {"list_changed": true} once the client got
//                                             notifications/tools/list_changed (since the
//                                             start), or {"error": "timeout"} after 30 s
//   {"op": "resources"}                    -> {"resources": [uris]}
//   {"op": "read", "uri"}                  -> the ReadResourceResult
//   {"op": "prompts"}                      -> {"prompts": [names]}
//   {"op": "session"}                      -> {"session": the Mcp-Session-Id}
//   {"op": "terminate"}                    -> {"terminated": true} (DELETE of the session)
// Any failure of a step is its line ({"error": message, "code": JSON-RPC code}); the client
// closes at the end and exits 0. A refused connection is one line, {"connect_error": message,
// "code": the HTTP status}, and no steps run.

const { Client } = require("@modelcontextprotocol/sdk/client/index.js");
const { StreamableHTTPClientTransport } = require("@modelcontextprotocol/sdk/client/streamableHttp.js");
const { ToolListChangedNotificationSchema } = require("@modelcontextprotocol/sdk/types.js");

async function main() {
  const program = JSON.parse(process.argv[2]);
  const transport = new StreamableHTTPClientTransport(new URL(program.url), {
    requestInit: { headers: program.headers || {} },
  });
  const client = new Client({ name: "switchboard-gateway-test", version: "0.0.0" });
  let changed = false;
  let wake = () => {};
  client.setNotificationHandler(ToolListChangedNotificationSchema, async () => {
    changed = true;
    wake();
  });
  try {
    await client.connect(transport);
  } catch (error) {
    const answer = { connect_error: String(error && error.message ? error.message : error), code: error && error.code };
    process.stdout.write(JSON.stringify(answer) + "\n");
    return;
  }
  for (const step of program.steps) {
    let answer;
    try {
      answer = await run(client, transport, step, () => changed, (f) => (wake = f));
    } catch (error) {
      answer = { error: String(error && error.message ? error.message : error), code: error && error.code };
    }
    process.stdout.write(JSON.stringify(answer) + "\n");
  }
  await client.close();
}

async function run(client, transport, step, hasChanged, onChange) {
  switch (step.op) {
    case "list": {
      const { tools } = await client.listTools();
      return { tools: tools.map((t) => t.name) };
    }
    case "call":
      return await client.callTool({ name: step.name, arguments: step.arguments || {} });
    case "wait_list_changed": {
      if (!hasChanged()) {
        let timer;
        const timeout = new Promise((resolve) => (timer = setTimeout(() => resolve(false), 30000)));
        const notified = new Promise((resolve) => onChange(() => resolve(true)));
        const heard = await Promise.race([notified, timeout]);
        clearTimeout(timer);
        if (!heard) return { error: "timeout" };
      }
      return { list_changed: true };
    }
    case "resources": {
      const { resources } = await client.listResources();
      return { resources: resources.map((r) => r.uri) };
    }
    case "read":
      return await client.readResource({ uri: step.uri });
    case "prompts": {
      const { prompts } = await client.listPrompts();
      return { prompts: prompts.map((p) => p.name) };
    }
    case "session":
      return { session: transport.sessionId };
    case "terminate":
      await transport.terminateSession();
      return { terminated: true };
    default:
      throw new Error(`unknown step ${step.op}`);
  }
}

main().catch((error) => {
  process.stderr.write(`client failed: ${error && error.stack ? error.stack : error}\n`);
  process.exit(1);
});
