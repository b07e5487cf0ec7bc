//! Invalid configuration stops start-up with a message naming the key.

use crate::harness::bin;

fn serve_fails_with(args: &[&str], env: &[(&str, &str)], file: Option<&str>, expect: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut c = bin();
    c.arg("serve")
        .args(args)
        .arg("--data-dir")
        .arg(dir.path().join("d"));
    if let Some(text) = file {
        let p = dir.path().join("printfleet.toml");
        std::fs::write(&p, text).unwrap();
        c.arg("--config").arg(p);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(expect), "expected {expect:?} in: {err}");
}

#[test]
fn bad_configuration_names_the_key() {
    serve_fails_with(&[], &[], Some("lisen = \"127.0.0.1:1\"\n"), "lisen");
    serve_fails_with(
        &[],
        &[],
        Some("[auth]\nsession_idle_minutes = 0\n"),
        "auth.session_idle_minutes",
    );
    serve_fails_with(
        &[],
        &[("PRINTFLEET_AUTH__LOCKOUT_THRESHOLD", "many")],
        None,
        "auth.lockout_threshold",
    );
    serve_fails_with(&[], &[("PRINTFLEET_LISTN", "x")], None, "listn");
    serve_fails_with(&["--listen", "everywhere"], &[], None, "listen");
    serve_fails_with(
        &["--plain-http", "--listen", "0.0.0.0:8080"],
        &[],
        None,
        "plain_http",
    );
    serve_fails_with(&["--database-url", "mysql://x"], &[], None, "database_url");
}

#[test]
fn help_describes_every_command() {
    let out = bin().arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for cmd in ["serve", "demo", "admin", "config", "policy"] {
        assert!(text.contains(cmd), "{text}");
    }
    let out = bin().args(["admin", "--help"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for cmd in ["bootstrap", "rotate-keys", "audit"] {
        assert!(text.contains(cmd), "{text}");
    }
}

#[test]
fn config_prints_the_effective_values_with_secrets_masked() {
    let out = bin()
        .args(["config", "--listen", "127.0.0.1:9999"])
        .env(
            "PRINTFLEET_MASTER_KEY",
            "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=",
        )
        // The `policy` commands' token is not a configuration key: ignored, not an error.
        .env("PRINTFLEET_TOKEN", "pf_for_the_policy_commands")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("listen = \"127.0.0.1:9999\""), "{text}");
    assert!(!text.contains("c2VjcmV0"), "{text}");
    assert!(!text.contains("pf_for_the_policy_commands"), "{text}");
}
