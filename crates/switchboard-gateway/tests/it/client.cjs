// A downstream MCP client for the gateway's tests: the official TypeScript SDK's Client
// over its Streamable HTTP transport (or legacy HTTP+SSE) (`@modelcontextprotocol/sdk`, pinned in
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
//   {"op": "set_level", "level"}           -> {} (logging/setLevel)
//   {"op": "logs", "count"}                -> {"logs": [params of each notifications/message
//                                             received so far]} once there are `count` (0
//                                             unless given), or {"error": "timeout"} after 30 s
//   {"op": "subscribe", "uri"}             -> {} (resources/subscribe); "unsubscribe" too
//   {"op": "wait_updated", "count"}        -> {"updated": [uris]} once the client got `count`
//                                             notifications/resources/updated (since the
//                                             start), or {"error": "timeout"} after 30 s
//   {"op": "call_progress", "name", "arguments"}
//                                          -> {"result": CallToolResult, "progress": [
//                                             {progress, total, message}, ...]} (the call
//                                             sent with a progressToken)
//   {"op": "call_cancel", "name", "arguments", "after_ms"}
//                                          -> {"cancelled": true, "error"} (the call aborted
//                                             after_ms after it was sent: the SDK sends
//                                             notifications/cancelled)
//   {"op": "asked"}                        -> {"asked": [{method, params}]}: the requests
//                                             the server sent this client so far
// Any failure of a step is its line ({"error": message, "code": JSON-RPC code}); the client
// closes at the end and exits 0. A refused connection is one line, {"connect_error": message,
// "code": the HTTP status}, and no steps run.
//
// Optional program keys (see makeTransport, makeClient):
//   "transport": "sse"       -> the legacy HTTP+SSE transport (SSEClientTransport) to `url`
//   "capabilities": {...}    -> the client's capabilities (e.g. {"elicitation": {"form": {},
//                               "url": {}}, "sampling": {}})
//   "answers": {"form": {content} | "decline", "url": "accept" | "decline",
//               "sample": "text", "roots": [{uri, name}]}
//                            -> how the client answers elicitation (form, URL mode),
//                               sampling (an assistant text message, model "test-model")
//                               and roots/list

const { Client } = require("@modelcontextprotocol/sdk/client/index.js");
const { StreamableHTTPClientTransport } = require("@modelcontextprotocol/sdk/client/streamableHttp.js");
const { SSEClientTransport } = require("@modelcontextprotocol/sdk/client/sse.js");
const {
  ToolListChangedNotificationSchema,
  LoggingMessageNotificationSchema,
  ResourceUpdatedNotificationSchema,
  ElicitRequestSchema,
  CreateMessageRequestSchema,
  ListRootsRequestSchema,
} = require("@modelcontextprotocol/sdk/types.js");

// The requests the server sent this client, in order (the "asked" step).
const asked = [];

// The log messages (params) and resource updates (URIs) the server sent, in order.
const logs = [];
const updated = [];

// Messages the transport is still sending (a cancellation is sent in the background).
const sending = new Set();

function makeTransport(program) {
  const requestInit = { headers: program.headers || {} };
  const transport =
    program.transport === "sse"
      ? new SSEClientTransport(new URL(program.url), { requestInit })
      : new StreamableHTTPClientTransport(new URL(program.url), { requestInit });
  const send = transport.send.bind(transport);
  transport.send = (message, options) => {
    const sent = send(message, options);
    sending.add(sent);
    sent.finally(() => sending.delete(sent)).catch(() => {});
    return sent;
  };
  return transport;
}

function makeClient(program) {
  const capabilities = program.capabilities || {};
  const client = new Client(
    { name: "switchboard-gateway-test", version: "0.0.0" },
    { capabilities },
  );
  const answers = program.answers || {};
  if (capabilities.elicitation) {
    client.setRequestHandler(ElicitRequestSchema, async (request) => {
      asked.push({ method: request.method, params: request.params });
      if (request.params.mode === "url") {
        return { action: answers.url === "accept" ? "accept" : "decline" };
      }
      if (!answers.form || answers.form === "decline") return { action: "decline" };
      return { action: "accept", content: answers.form };
    });
  }
  if (capabilities.roots) {
    client.setRequestHandler(ListRootsRequestSchema, async (request) => {
      asked.push({ method: request.method, params: request.params });
      return { roots: answers.roots || [] };
    });
  }
  if (capabilities.sampling) {
    client.setRequestHandler(CreateMessageRequestSchema, async (request) => {
      asked.push({ method: request.method, params: request.params });
      return {
        role: "assistant",
        model: "test-model",
        stopReason: "endTurn",
        content: { type: "text", text: answers.sample || "sampled" },
      };
    });
  }
  return client;
}

async function main() {
  const program = JSON.parse(process.argv[2]);
  const transport = makeTransport(program);
  const client = makeClient(program);
  let changed = false;
  let wake = () => {};
  client.setNotificationHandler(ToolListChangedNotificationSchema, async () => {
    changed = true;
    wake();
  });
  client.setNotificationHandler(LoggingMessageNotificationSchema, async (n) => {
    logs.push(n.params);
  });
  client.setNotificationHandler(ResourceUpdatedNotificationSchema, async (n) => {
    updated.push(n.params.uri);
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

// `answer` once `done()` holds (checked every 50 ms), or a timeout after 30 s.
async function waitFor(done, answer) {
  const deadline = Date.now() + 30000;
  while (!done()) {
    if (Date.now() > deadline) return { error: "timeout", ...answer };
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return answer;
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
    case "set_level":
      return await client.setLoggingLevel(step.level);
    case "logs":
      return await waitFor(() => logs.length >= (step.count || 0), { logs });
    case "subscribe":
      return await client.subscribeResource({ uri: step.uri });
    case "unsubscribe":
      return await client.unsubscribeResource({ uri: step.uri });
    case "wait_updated":
      return await waitFor(() => updated.length >= (step.count || 1), { updated });
    case "prompts": {
      const { prompts } = await client.listPrompts();
      return { prompts: prompts.map((p) => p.name) };
    }
    case "call_progress": {
      const progress = [];
      const result = await client.callTool(
        { name: step.name, arguments: step.arguments || {} },
        undefined,
        { onprogress: (p) => progress.push(p) },
      );
      return { result, progress };
    }
    case "call_cancel": {
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort("the test cancels"), step.after_ms || 200);
      try {
        await client.callTool(
          { name: step.name, arguments: step.arguments || {} },
          undefined,
          { signal: controller.signal },
        );
        return { error: "the call finished before it was cancelled" };
      } catch (error) {
        // The SDK sends notifications/cancelled in the background: wait until it is sent.
        await Promise.allSettled([...sending]);
        return { cancelled: controller.signal.aborted, error: String(error && error.message) };
      } finally {
        clearTimeout(timer);
      }
    }
    case "asked":
      return { asked };
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
