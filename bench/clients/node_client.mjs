// Echo workload with the TypeScript MCP SDK (@modelcontextprotocol/sdk), for scripts/compare-clients.
//
// Usage: node node_client.mjs URL [--calls N] [--concurrency C] [--warmup W]
//
// Opens one Streamable HTTP session, warms up, then runs N sequential `echo` calls and N calls
// with C in flight (a promise pool), and prints one JSON line per phase. Connect/initialize and
// warm-up are not measured. CPU is this process's own user+system time (process.cpuUsage()).

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

function parseArgs(argv) {
  const opts = { url: undefined, calls: 2000, concurrency: 16, warmup: 100 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--calls") opts.calls = Number(argv[++i]);
    else if (a === "--concurrency") opts.concurrency = Number(argv[++i]);
    else if (a === "--warmup") opts.warmup = Number(argv[++i]);
    else if (!opts.url) opts.url = a;
    else throw new Error(`unexpected argument ${a}`);
  }
  if (!opts.url) throw new Error("usage: node_client.mjs URL [--calls N] [--concurrency C] [--warmup W]");
  return opts;
}

const ARGS = { message: "hello" };

function cpuUs() {
  const u = process.cpuUsage();
  return u.user + u.system;
}

// Nearest-rank percentile, the same rule the Python and Rust clients use.
function percentile(sorted, q) {
  const rank = Math.max(1, Math.ceil((sorted.length * q) / 100));
  return sorted[rank - 1];
}

const round1 = (x) => Math.round(x * 10) / 10;

function report(phase, latencies, wallS, cpu) {
  const lat = Float64Array.from(latencies).sort();
  const n = lat.length;
  console.log(
    JSON.stringify({
      client: "typescript",
      phase,
      calls: n,
      calls_per_sec: round1(n / wallS),
      p50_us: round1(percentile(lat, 50)),
      p99_us: round1(percentile(lat, 99)),
      client_cpu_us_per_call: round1(cpu / n),
    }),
  );
}

async function oneCall(client) {
  const start = process.hrtime.bigint();
  const result = await client.callTool({ name: "echo", arguments: ARGS });
  const elapsedUs = Number(process.hrtime.bigint() - start) / 1000;
  if (result.isError) throw new Error(`echo failed: ${JSON.stringify(result)}`);
  return elapsedUs;
}

async function sequential(client, calls) {
  const out = [];
  for (let i = 0; i < calls; i++) out.push(await oneCall(client));
  return out;
}

async function concurrent(client, calls, inFlight) {
  const out = [];
  let next = 0;
  async function worker() {
    while (next < calls) {
      next++;
      out.push(await oneCall(client));
    }
  }
  await Promise.all(Array.from({ length: Math.min(inFlight, calls) }, worker));
  return out;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const client = new Client({ name: "switchboard-compare", version: "0.0.0" });
  const transport = new StreamableHTTPClientTransport(new URL(opts.url));
  await client.connect(transport);
  try {
    await sequential(client, opts.warmup);

    let cpu0 = cpuUs();
    let t0 = process.hrtime.bigint();
    let lat = await sequential(client, opts.calls);
    report("sequential", lat, Number(process.hrtime.bigint() - t0) / 1e9, cpuUs() - cpu0);

    cpu0 = cpuUs();
    t0 = process.hrtime.bigint();
    lat = await concurrent(client, opts.calls, opts.concurrency);
    report(`concurrent${opts.concurrency}`, lat, Number(process.hrtime.bigint() - t0) / 1e9, cpuUs() - cpu0);
  } finally {
    await transport.terminateSession().catch(() => {});
    await client.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
