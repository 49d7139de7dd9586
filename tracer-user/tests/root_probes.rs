//! Root test on this machine's kernel: every program of the eBPF object
//! passes the verifier (a probe may be unsupported or wait for its module,
//! but none may be refused), and the required probes attach.

use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_vfio-trace");

#[test]
fn every_program_loads_and_required_probes_attach() {
    // SAFETY: no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        assert!(std::env::var_os("CI").is_none(), "CI must run this as root");
        eprintln!("SKIPPED root_probes: not root");
        return;
    }
    let out = Command::new(BIN)
        .args(["probes", "--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let probes = v["probes"].as_array().unwrap();
    assert!(probes.len() >= 20, "the attach table lists every probe");
    for p in probes {
        assert_ne!(p["status"], "failed", "refused by this kernel: {p}");
        if p["required"] == true {
            assert_eq!(p["status"], "attached", "{p}");
        }
        if p["status"] != "attached" {
            assert!(
                !p["reason"].as_str().unwrap().is_empty(),
                "a reason is given: {p}"
            );
        }
    }
    for d in ["ring_full", "pending_full", "read_failed"] {
        assert_eq!(v["drops"][d], 0);
    }
}
