//! While the UI owns the terminal, everything written to stderr (the
//! logger, warnings of the probe loader) goes to a log file instead: the
//! process's fd 2 is pointed at the file and put back afterwards.

use std::{
    fs::File,
    os::fd::OwnedFd,
    path::{Path, PathBuf},
    sync::{Mutex, MutexGuard},
};

use anyhow::{Context, Result};

/// The saved original stderr (None when not redirected).
static SAVED: Mutex<Option<OwnedFd>> = Mutex::new(None);

fn saved_stderr() -> MutexGuard<'static, Option<OwnedFd>> {
    // A panic elsewhere never leaves the Option half-written.
    SAVED.lock().unwrap_or_else(|e| e.into_inner())
}

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
        crate::sudo_owner::give(&file, path);
        let saved = rustix::io::fcntl_dupfd_cloexec(std::io::stderr(), 0)
            .map_err(std::io::Error::from)
            .context("dup(stderr)")?;
        rustix::stdio::dup2_stderr(&file)
            .map_err(std::io::Error::from)
            .context("dup2(log, stderr)")?;
        *saved_stderr() = Some(saved);
        log::info!("vfio-trace UI started; log in {}", path.display());
        Ok(StderrToFile(()))
    }
}

/// Puts the original stderr back (idempotent; used by the panic hook too).
pub fn restore_stderr() {
    if let Some(fd) = saved_stderr().take() {
        // Nothing to do if it fails: stderr keeps pointing at the log.
        let _ = rustix::stdio::dup2_stderr(&fd);
    }
}

impl Drop for StderrToFile {
    fn drop(&mut self) {
        restore_stderr();
    }
}
