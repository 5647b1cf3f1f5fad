use super::*;

fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::to_owned).collect()
}

/// What Node 20 prints for `node missing.js`.
const NODE_MISSING_MODULE: &str = "node:internal/modules/cjs/loader:1228
  throw err;
  ^

Error: Cannot find module '/srv/missing.js'
at Module._resolveFilename (node:internal/modules/cjs/loader:1225:15)
at Module._load (node:internal/modules/cjs/loader:1051:27)
at Function.executeUserEntryPoint [as runMain] (node:internal/modules/run_main:174:12)
at node:internal/main/run_main_module:28:49 {
  code: 'MODULE_NOT_FOUND',
  requireStack: []
}

Node.js v20.19.0
";

#[test]
fn a_dead_server_shows_its_meaningful_stderr_lines() {
    let error = Error::Unreachable {
        server: "fs".into(),
        reason: "connection closed: initialize response".into(),
    };
    let error = explain_stdio_failure(error, false, lines(NODE_MISSING_MODULE));
    let Error::Unreachable { reason, .. } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(
        reason,
        "the server process exited before initialize completed (its last stderr lines \
         follow)\n    node:internal/modules/cjs/loader:1228\n    throw err;\n    \
         Error: Cannot find module '/srv/missing.js'\n    code: 'MODULE_NOT_FOUND',\n    \
         requireStack: []\n    Node.js v20.19.0"
    );
}

#[test]
fn stderr_lines_are_capped_in_number_and_length() {
    let long = "x".repeat(500);
    let tail: Vec<String> = (0..20)
        .map(|i| format!("line {i}"))
        .chain([long.clone(), String::new()])
        .collect();
    let shown = meaningful_lines(&tail);
    assert_eq!(shown.len(), SHOWN_STDERR_LINES);
    assert_eq!(shown[0], "line 15");
    assert_eq!(shown[5].chars().count(), SHOWN_STDERR_CHARS);
    assert!(shown[5].ends_with('…'));

    // A server still running keeps the transport's reason; no stderr adds nothing.
    let error = Error::Unreachable {
        server: "s".into(),
        reason: "bad handshake".into(),
    };
    let error = explain_stdio_failure(error, true, Vec::new());
    assert_eq!(
        error.to_string(),
        "server 's' is unreachable: bad handshake"
    );
}
