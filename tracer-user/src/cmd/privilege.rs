//! What loading the probes needs from the kernel, and what to tell a user
//! who runs without it: which capability is missing and the command to run.

use crate::probes::tracefs;

const CAP_DAC_OVERRIDE: u32 = 1;
const CAP_DAC_READ_SEARCH: u32 = 2;
pub const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// This process's effective capability set (`CapEff` of /proc/self/status).
fn effective() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

/// Whether this process has capability `cap` (true when it cannot tell).
pub fn has(cap: u32) -> bool {
    effective().is_none_or(|e| e & (1 << cap) != 0)
}

/// The highest capability this kernel knows (CAP_BPF and CAP_PERFMON came
/// in 5.8; before, CAP_SYS_ADMIN covers both).
fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(CAP_BPF)
}

/// The capabilities loading and attaching the probes needs that this
/// process lacks (empty: none missing, or it cannot tell).
pub fn missing_for_probes() -> Vec<&'static str> {
    let Some(eff) = effective() else {
        return Vec::new();
    };
    let has = |c: u32| eff & (1 << c) != 0;
    let mut missing = Vec::new();
    if last_cap() >= CAP_BPF {
        // bpf_capable() and perfmon_capable() accept CAP_SYS_ADMIN too.
        if !has(CAP_BPF) && !has(CAP_SYS_ADMIN) {
            missing.push("CAP_BPF");
        }
        if !has(CAP_PERFMON) && !has(CAP_SYS_ADMIN) {
            missing.push("CAP_PERFMON");
        }
    } else if !has(CAP_SYS_ADMIN) {
        missing.push("CAP_SYS_ADMIN");
    }
    // Tracepoints are found through tracefs, root's and mode 700.
    if !tracefs::readable() && !has(CAP_DAC_READ_SEARCH) && !has(CAP_DAC_OVERRIDE) {
        missing.push("CAP_DAC_READ_SEARCH");
    }
    missing
}

/// Whether an error reads as the kernel refusing this process.
pub fn is_permission_error(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::PermissionDenied {
                return true;
            }
        }
        let t = c.to_string();
        t.contains("Operation not permitted")
            || t.contains("Permission denied")
            || t.contains("(os error 1)")
            || t.contains("(os error 13)")
    })
}

/// "missing CAP_BPF, CAP_PERFMON (…); run it as root: sudo vfio-trace …".
pub fn probes_hint(missing: &[&str]) -> String {
    format!(
        "not privileged enough to load the probes: missing {} (the probes need CAP_BPF \
         and CAP_PERFMON, or CAP_SYS_ADMIN, and read access to tracefs); run it as root:\n    {}",
        missing.join(", "),
        sudo_command()
    )
}

/// This very command line under `sudo`, quoted for a POSIX shell.
pub fn sudo_command() -> String {
    let mut words = vec!["sudo".to_string()];
    for (i, a) in std::env::args_os().enumerate() {
        let a = a.to_string_lossy().into_owned();
        // A bare program name found through $PATH is shown as vfio-trace.
        let a = if i == 0 && !a.contains('/') {
            "vfio-trace".to_string()
        } else {
            a
        };
        words.push(shell_quote(&a));
    }
    words.join(" ")
}

fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("--duration"), "--duration");
        assert_eq!(shell_quote("tcp:127.0.0.1:9"), "tcp:127.0.0.1:9");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn permission_errors() {
        let e = anyhow::Error::new(std::io::Error::from_raw_os_error(libc::EPERM));
        assert!(is_permission_error(&e.context("loading")));
        let e = anyhow::anyhow!("unknown probe \"x\"");
        assert!(!is_permission_error(&e));
    }
}
