//! `greguard check` end to end.

mod common;

use common::*;

#[test]
fn every_example_policy_checks_ok() {
    for example in ["small-site", "pptp-concentrator", "dmvpn-hub"] {
        let path = format!("config/examples/{example}.toml");
        let o = greguard(&["check", "-c", &path]);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(0), "{path}: {err}");
        assert!(out.ends_with(&format!("{path}: ok\n")), "{out}");
    }
    let o = greguard(&["check", "-c", "systemd/greguard.toml"]);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    assert!(text(&o).0.contains("berlin-branch"));
}

#[test]
fn an_invalid_policy_exits_1_with_file_line_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[[tunnel]]\nname = \"a\"\npeer = \"203.0.113.7\"\nlocal = \"198.51.100.1\"\nprotocols = [\"ipv4\", \"ipx\"]\n")
        .unwrap();
    let o = greguard(&["check", "-c", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let (out, err) = text(&o);
    assert!(out.is_empty(), "{out}");
    assert!(
        err.starts_with(&format!("{}:5:22: ", path.display())),
        "{err}"
    );
    assert!(err.contains("ipx"), "{err}");
}

#[test]
fn a_missing_policy_exits_1_naming_the_file() {
    let o = greguard(&["check", "-c", "/nonexistent/greguard.toml"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o)
            .1
            .contains("/nonexistent/greguard.toml: cannot read policy"),
        "{:?}",
        text(&o)
    );
}

#[test]
fn bad_arguments_exit_with_usage() {
    let o = greguard(&["replay"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(text(&o).1.contains("Usage"), "{:?}", text(&o));
}

#[test]
fn run_without_a_ports_table_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("no-ports.toml");
    std::fs::write(&policy, traffic::LAB_TUNNELS).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_greguard"))
        .args(["run", "-c"])
        .arg(&policy)
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no [ports] table"), "{stderr}");
}
