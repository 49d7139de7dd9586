//! tracefs must be mounted for tracepoint attach (aya otherwise reports
//! "tracefs not found"). Mount it when we can.

use std::path::Path;

const TRACEFS: &str = "/sys/kernel/tracing";

/// Ensures tracefs is mounted at /sys/kernel/tracing (or the legacy debugfs
/// path exists). Returns a description of what was done, or why it could not.
pub fn ensure_mounted() -> Result<Option<String>, String> {
    if Path::new(TRACEFS).join("events").is_dir()
        || Path::new("/sys/kernel/debug/tracing/events").is_dir()
    {
        return Ok(None);
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
        Ok(Some(format!("mounted tracefs at {TRACEFS}")))
    } else {
        Err(format!(
            "tracefs is not mounted and mounting it at {TRACEFS} failed: {}",
            std::io::Error::last_os_error()
        ))
    }
}
