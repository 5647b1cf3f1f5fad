//! `deploy/kubernetes/configmap.yaml`: its `switchboard.toml` loads with the loader
//! `switchboard serve` uses (`Config::load`, every key validated), and the gateway would
//! serve it (listening beyond loopback is allowed: it has `[gateway.auth]`) with `[scale]`
//! on. The manifests' cross-references are checked by `tests/deploy/test_manifests.py`.

use std::path::Path;
use std::time::Duration;

use switchboard::Config;
use switchboard::config::ScaleStore;
use switchboard_gateway::{GatewaySettings, check_exposure};

/// The value of `key: |` in a YAML file: the indented block under it, dedented. Enough for
/// the one block scalar of the ConfigMap (a YAML parser would be a dependency for one test).
fn block_scalar(yaml: &str, key: &str) -> String {
    let mut lines = yaml.lines().skip_while(|l| l.trim() != format!("{key}: |"));
    let head = lines
        .next()
        .unwrap_or_else(|| panic!("no `{key}: |` block"));
    let outer = head.len() - head.trim_start().len();
    let body: Vec<&str> = lines
        .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > outer)
        .collect();
    let indent = body
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .expect("a non-empty block");
    body.iter()
        .map(|l| l.get(indent..).unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The ConfigMap's `switchboard.toml`.
fn configmap_toml() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let yaml = std::fs::read_to_string(root.join("deploy/kubernetes/configmap.yaml")).unwrap();
    block_scalar(&yaml, "switchboard.toml")
}

#[test]
fn the_kubernetes_configmap_is_a_config_switchboard_serve_accepts() {
    let toml = configmap_toml();
    assert!(toml.contains("[servers.docs]"), "{toml}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("switchboard.toml");
    std::fs::write(&path, &toml).unwrap();

    let config = Config::load(&path).unwrap_or_else(|e| panic!("{e}\n{toml}"));
    let gateway = &config.gateway;
    assert_eq!(gateway.listen.to_string(), "0.0.0.0:8080");
    assert_eq!(gateway.shutdown_delay, Duration::from_secs(5));
    assert_eq!(gateway.drain_timeout, Duration::from_secs(30));
    assert!(
        gateway.auth.is_some(),
        "beyond loopback needs [gateway.auth]"
    );
    assert_eq!(config.servers.len(), 2);
    let scale = config
        .scale
        .as_ref()
        .expect("the ConfigMap turns [scale] on");
    assert_eq!(scale.store, Some(ScaleStore::Redis));
    assert_eq!(scale.redis_url_env, "SWITCHBOARD_REDIS_URL");
    assert_eq!(
        scale.keys_file,
        Path::new("/etc/switchboard/keys/keyring"),
        "where deployment.yaml mounts the Secret's keyring"
    );
    let settings = GatewaySettings::from(&**gateway);
    check_exposure(&settings.inbound, settings.listen).expect("it may listen on 0.0.0.0");
}

#[test]
fn block_scalars_are_read_to_their_end() {
    let yaml = "data:\n  a.toml: |\n    x = 1\n\n    [t]\n      y = 2\nother: 3\n";
    assert_eq!(block_scalar(yaml, "a.toml"), "x = 1\n\n[t]\n  y = 2");
}
