//! The systemd unit: `systemd-analyze verify` accepts it (with the binary where the build put
//! it), and its ExecStartPre/ExecReload check the policy first.

use std::process::Command;

#[test]
fn the_unit_file_verifies() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let unit = std::fs::read_to_string(root.join("systemd/greguard.service")).expect("unit file");
    assert!(
        unit.contains("Type=notify") && unit.contains("ExecReload=/usr/local/bin/greguard check")
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("greguard.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/greguard", env!("CARGO_BIN_EXE_greguard")),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze (Debian package systemd)");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
