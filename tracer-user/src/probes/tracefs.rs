//! tracefs must be mounted for tracepoint attach (aya otherwise reports
//! "tracefs not found"). Mount it when we can; when we cannot, say why:
//! not mounted (mounting needs CAP_SYS_ADMIN), or mounted but not readable
//! by this user (tracefs is root's, mode 700).

use std::{io::ErrorKind, path::Path};

const TRACEFS: &str = "/sys/kernel/tracing";
const LEGACY: &str = "/sys/kernel/debug/tracing";

/// Whether tracefs' event directory can be read here (mounted, and this
/// user may look inside).
pub fn readable() -> bool {
    [TRACEFS, LEGACY]
        .iter()
        .any(|d| std::fs::read_dir(Path::new(d).join("events")).is_ok())
}

/// Where tracefs is mounted, from the mount table (readable by anyone).
fn mounted_at() -> Option<String> {
    mount_point(&std::fs::read_to_string("/proc/self/mounts").ok()?)
}

fn mount_point(mounts: &str) -> Option<String> {
    mounts.lines().find_map(|l| {
        let mut f = l.split_whitespace();
        let (_src, dir, fstype) = (f.next()?, f.next()?, f.next()?);
        (fstype == "tracefs" && (dir == TRACEFS || dir == LEGACY)).then(|| dir.to_string())
    })
}

/// Ensures tracefs is mounted at /sys/kernel/tracing (or the legacy debugfs
/// path exists). Returns a description of what was done, or why it could not.
pub fn ensure_mounted() -> Result<Option<String>, String> {
    if readable() {
        return Ok(None);
    }
    if let Some(dir) = mounted_at() {
        let why = match std::fs::read_dir(Path::new(&dir).join("events")) {
            Err(e) if e.kind() == ErrorKind::PermissionDenied => format!(
                "this user may not read it ({}): tracepoint probes need root \
                 (or CAP_DAC_READ_SEARCH)",
                mode_of(&dir)
            ),
            Err(e) => format!("reading {dir}/events: {e}"),
            Ok(_) => "it has no events directory".to_string(),
        };
        return Err(format!("tracefs is mounted at {dir} but {why}"));
    }
    let src = c"nodev";
    let target = c"/sys/kernel/tracing";
    let fstype = c"tracefs";
    // SAFETY: valid NUL-terminated strings, no data argument.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc == 0 {
        return Ok(Some(format!("mounted tracefs at {TRACEFS}")));
    }
    let e = std::io::Error::last_os_error();
    if e.kind() == ErrorKind::PermissionDenied {
        Err(format!(
            "tracefs is not mounted, and mounting it at {TRACEFS} needs CAP_SYS_ADMIN ({e}): \
             run as root, or mount it once: sudo mount -t tracefs nodev {TRACEFS}"
        ))
    } else {
        Err(format!(
            "tracefs is not mounted and mounting it at {TRACEFS} failed: {e}"
        ))
    }
}

/// "mode 700, owner uid 0" of a directory, for messages.
fn mode_of(dir: &str) -> String {
    use std::os::unix::fs::MetadataExt;
    match std::fs::metadata(dir) {
        Ok(m) => format!("mode {:o}, owner uid {}", m.mode() & 0o7777, m.uid()),
        Err(e) => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::mount_point;

    #[test]
    fn finds_tracefs_in_the_mount_table() {
        let t = "sysfs /sys sysfs rw 0 0\n\
                 tracefs /sys/kernel/tracing tracefs rw,nosuid,nodev,noexec,relatime 0 0\n";
        assert_eq!(mount_point(t).as_deref(), Some("/sys/kernel/tracing"));
        assert_eq!(mount_point("sysfs /sys sysfs rw 0 0\n"), None);
        let legacy = "tracefs /sys/kernel/debug/tracing tracefs rw 0 0\n";
        assert_eq!(
            mount_point(legacy).as_deref(),
            Some("/sys/kernel/debug/tracing")
        );
    }
}
