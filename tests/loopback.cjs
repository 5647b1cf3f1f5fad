// Preload (`node --require ./tests/loopback.cjs ...`) that forces every TCP listen onto
// 127.0.0.1. The MCP test peers (server-everything's sse/streamableHttp modes) listen on all
// interfaces; tests must never expose them beyond loopback.
//
// Handles every net.Server#listen signature that takes a port:
//   listen(port[, host][, backlog][, cb]), listen(port, cb), listen({port, host, ...}[, cb]).
// Pipe/handle listens (a string path, {path}, {fd}, a handle object) are left alone: they
// are not TCP.
//
// A listen with a host resolves it through dns.lookup, asynchronously, so server.address()
// would be null right after listen() where the caller's host-less listen binds at once (the
// conformance suite reads the port that way). During our own listen, lookups of the loopback
// literal answer synchronously, so binding stays as synchronous as the caller expects.
"use strict";

const dns = require("node:dns");
const net = require("node:net");

const LOOPBACK = "127.0.0.1";
const originalListen = net.Server.prototype.listen;

function syncLoopbackLookup(server, args) {
  const lookup = dns.lookup;
  dns.lookup = function loopbackLookup(host, options, callback) {
    if (host !== LOOPBACK) return lookup.apply(this, arguments);
    const done = typeof options === "function" ? options : callback;
    if (options && typeof options === "object" && options.all) {
      done(null, [{ address: LOOPBACK, family: 4 }]);
    } else {
      done(null, LOOPBACK, 4);
    }
    return {};
  };
  try {
    return originalListen.apply(server, args);
  } finally {
    dns.lookup = lookup;
  }
}

function isPort(value) {
  return (
    typeof value === "number" ||
    (typeof value === "string" && value.trim() !== "" && /^\d+$/.test(value.trim()))
  );
}

net.Server.prototype.listen = function listen(...args) {
  const first = args[0];
  if (args.length === 0 || first === undefined || first === null || isPort(first)) {
    // listen(), listen(port), listen(port, cb), listen(port, host, ...), listen(port, backlog, ...)
    const port = args.length === 0 || first === undefined || first === null ? 0 : first;
    const rest = args.slice(1);
    if (typeof rest[0] === "string") {
      rest.shift(); // drop the caller's host
    } else if (rest[0] === undefined || rest[0] === null) {
      if (rest.length > 0) rest.shift(); // listen(port, undefined, ...)
    }
    return syncLoopbackLookup(this, [port, LOOPBACK, ...rest]);
  }
  if (typeof first === "object" && !Array.isArray(first) && first.path === undefined &&
      first.fd === undefined && first._handle === undefined && first.handle === undefined &&
      ("port" in first || "host" in first || Object.keys(first).length === 0)) {
    // listen({port, host, ...}[, cb]): keep every other option, force the host, no dual stack.
    const options = Object.assign({}, first, { host: LOOPBACK, ipv6Only: false });
    return syncLoopbackLookup(this, [options, ...args.slice(1)]);
  }
  return originalListen.apply(this, args);
};
