//! While the UI owns the terminal, everything written to stderr (the
//! logger, warnings of the probe loader) goes to a log file instead: the
//! process's fd 2 is pointed at the file and put back afterwards.

use std::{
    fs::File,
    os::fd::{AsRawFd, RawFd},
    path::{Path, PathBuf},
    sync::atomic::{AtomicI32, Ordering},
};

use anyhow::{Context, Result};

/// The saved original stderr (-1 when not redirected).
static SAVED: AtomicI32 = AtomicI32::new(-1);

/// Where the UI's log goes: `$VFIO_TRACE_LOG`, else
/// `$TMPDIR/vfio-trace-<pid>.log`.
pub fn default_path() -> PathBuf {
    std::env::var_os("VFIO_TRACE_LOG")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::temp_dir().join(format!("vfio-trace-{}.log", std::process::id()))
        })
}

/// Points stderr at the file until dropped.
pub struct StderrToFile(());

impl StderrToFile {
    pub fn new(path: &Path) -> Result<Self> {
        let file = File::options()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("log file {}", path.display()))?;
        // SAFETY: plain fd duplication; both fds are valid here.
        let saved: RawFd = unsafe { libc::dup(2) };
        if saved < 0 {
            return Err(std::io::Error::last_os_error()).context("dup(stderr)");
        }
        // SAFETY: as above.
        if unsafe { libc::dup2(file.as_raw_fd(), 2) } < 0 {
            // SAFETY: `saved` is ours.
            unsafe { libc::close(saved) };
            return Err(std::io::Error::last_os_error()).context("dup2(log, stderr)");
        }
        SAVED.store(saved, Ordering::SeqCst);
        log::info!("vfio-trace UI started; log in {}", path.display());
        Ok(StderrToFile(()))
    }
}

/// Puts the original stderr back (idempotent; used by the panic hook too).
pub fn restore_stderr() {
    let saved = SAVED.swap(-1, Ordering::SeqCst);
    if saved >= 0 {
        // SAFETY: `saved` is the fd we duplicated; 2 is stderr.
        unsafe {
            libc::dup2(saved, 2);
            libc::close(saved);
        }
    }
}

impl Drop for StderrToFile {
    fn drop(&mut self) {
        restore_stderr();
    }
}
