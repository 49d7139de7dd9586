//! Output files (`export -o`, `record -o`) that never destroy input:
//!
//! - a path that is one of the inputs (the same file: same device and
//!   inode, whatever the spelling, links included) is refused, `--force` or
//!   not;
//! - an existing file is refused unless `--force`;
//! - a complete output replaces its target in one `rename`: the target
//!   keeps its old content until the new one is complete, and an output
//!   that fails half-way removes its temporary file.
//!
//! Recordings differ in one way: without an existing target the recording
//! is written at its final name from the first byte (created with
//! `O_EXCL`), so a recorder killed with SIGKILL, or stopped by a full disk,
//! leaves its recording where the user looks for it. With `--force` over
//! an existing file it goes to a temporary file in the same directory
//! (`NAME.vfio-trace-PID.tmp`, said on stderr) that is renamed over the
//! target when the recording ends; a killed recorder leaves the old file
//! untouched and the new recording in that temporary file.
//!
//! An existing target that is not a regular file (`/dev/null`,
//! `/dev/stdout`, a FIFO) is written in place: there is nothing to replace.

use std::{
    fs::{File, OpenOptions},
    io::{ErrorKind, Write},
    os::unix::fs::{FileTypeExt, MetadataExt},
    path::{Path, PathBuf},
};

use anyhow::{anyhow, bail, Context, Result};

/// What the output is; decides what an unfinished one leaves behind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// All or nothing: an unfinished output is removed (`export`).
    Whole,
    /// A recording: whatever was written is kept (a killed or failed
    /// recorder's events up to then stay readable), created at its name
    /// when it did not exist.
    Recording,
}

/// An output file being written; [`commit`](Output::commit) when complete.
#[derive(Debug)]
pub struct Output {
    /// The path as the user gave it (for messages).
    target: PathBuf,
    /// Where the complete output goes (the target, symlinks resolved).
    dest: PathBuf,
    /// The temporary file being written, renamed to `dest` on commit; none
    /// when writing `dest` directly.
    temp: Option<PathBuf>,
    file: File,
    /// A regular file (synced before commit).
    regular: bool,
    kind: Kind,
    committed: bool,
}

/// Checks that `target` may be written (not an input; not existing unless
/// `force`; not a directory), without creating anything. Commands call it
/// before slow work (attaching probes) so a refused path fails at once.
pub fn check(target: &Path, inputs: &[PathBuf], force: bool) -> Result<()> {
    plan(target, inputs, force).map(|_| ())
}

/// Refuses a standard output that is one of `inputs` (`export F >> F`).
pub fn check_stdout(inputs: &[PathBuf]) -> Result<()> {
    // SAFETY: fstat on fd 1 into a zeroed stat buffer.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(1, &mut st) } != 0 || st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Ok(());
    }
    if let Some(input) = same_as_input((st.st_dev, st.st_ino), inputs) {
        bail!(
            "standard output is {}, one of the inputs: writing it would destroy it \
             (write elsewhere, e.g. -o OUT)",
            input.display()
        );
    }
    Ok(())
}

/// Where to write.
enum Plan {
    /// A new regular file at `dest`.
    New { dest: PathBuf },
    /// `dest` exists and is replaced (`--force`); keep its permissions.
    Replace { dest: PathBuf, mode: u32 },
    /// `dest` is not a regular file (a device, a FIFO): write in place.
    InPlace { dest: PathBuf },
}

fn plan(target: &Path, inputs: &[PathBuf], force: bool) -> Result<Plan> {
    if target.as_os_str().is_empty() {
        bail!("the output path is empty");
    }
    let shown = target.display();
    match std::fs::symlink_metadata(target) {
        Err(e) if e.kind() == ErrorKind::NotFound => {
            let dir = parent(target);
            match std::fs::metadata(dir) {
                Ok(m) if m.is_dir() => Ok(Plan::New {
                    dest: target.to_path_buf(),
                }),
                Ok(_) => bail!("cannot write {shown}: {} is not a directory", dir.display()),
                Err(e) => Err(anyhow!(e))
                    .with_context(|| format!("cannot write {shown}: directory {}", dir.display())),
            }
        }
        Err(e) => Err(anyhow!(e)).with_context(|| format!("cannot write {shown}")),
        Ok(_) => {
            // Exists (maybe as a symlink: follow it, dangling is an error).
            let meta = std::fs::metadata(target)
                .with_context(|| format!("cannot write {shown} (a symlink to nowhere?)"))?;
            let ft = meta.file_type();
            if ft.is_dir() {
                bail!("cannot write {shown}: it is a directory (give a file name)");
            }
            if !ft.is_file() {
                if ft.is_char_device() || ft.is_fifo() || ft.is_socket() || ft.is_block_device() {
                    if ft.is_block_device() {
                        bail!("refusing to write {shown}: it is a block device");
                    }
                    return Ok(Plan::InPlace {
                        dest: target.to_path_buf(),
                    });
                }
                bail!("cannot write {shown}: not a regular file");
            }
            if let Some(input) = same_as_input((meta.dev(), meta.ino()), inputs) {
                bail!(
                    "refusing to write {shown}: it is the input {}, which writing it would destroy \
                     (--force does not change this; write elsewhere)",
                    input.display()
                );
            }
            if !force {
                bail!(
                    "refusing to overwrite {shown}: it exists (use --force to replace it, \
                     or give another name)"
                );
            }
            let dest =
                std::fs::canonicalize(target).with_context(|| format!("resolving {shown}"))?;
            Ok(Plan::Replace {
                dest,
                mode: meta.mode() & 0o7777,
            })
        }
    }
}

/// The input that is the file `(dev, ino)`, if any.
fn same_as_input(id: (u64, u64), inputs: &[PathBuf]) -> Option<&PathBuf> {
    inputs.iter().find(|p| {
        std::fs::metadata(p)
            .map(|m| m.is_file() && (m.dev(), m.ino()) == id)
            .unwrap_or(false)
    })
}

fn parent(p: &Path) -> &Path {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

impl Output {
    /// Opens `target` for writing following the rules of this module.
    pub fn create(target: &Path, inputs: &[PathBuf], force: bool, kind: Kind) -> Result<Self> {
        let shown = target.display();
        let plan = plan(target, inputs, force)?;
        let (dest, temp, file, regular) = match plan {
            Plan::InPlace { dest } => {
                let file = OpenOptions::new()
                    .write(true)
                    .open(&dest)
                    .with_context(|| format!("opening {shown}"))?;
                (dest, None, file, false)
            }
            Plan::New { dest } if kind == Kind::Recording => {
                let file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&dest)
                    .with_context(|| format!("creating {shown}"))?;
                (dest, None, file, true)
            }
            Plan::New { dest } => {
                let (temp, file) = temp_beside(&dest, None)?;
                (dest, Some(temp), file, true)
            }
            Plan::Replace { dest, mode } => {
                let (temp, file) = temp_beside(&dest, Some(mode))?;
                if kind == Kind::Recording {
                    eprintln!(
                        "vfio-trace: {shown} exists (--force): recording to {}, which replaces it \
                         when the recording ends",
                        temp.display()
                    );
                }
                (dest, Some(temp), file, true)
            }
        };
        if regular {
            // Under sudo, a file we made belongs to the user who asked.
            crate::sudo_owner::give(&file, temp.as_deref().unwrap_or(&dest));
        }
        Ok(Output {
            target: target.to_path_buf(),
            dest,
            temp,
            file,
            regular,
            kind,
            committed: false,
        })
    }

    /// The file being written: the temporary file when there is one.
    pub fn write_path(&self) -> &Path {
        self.temp.as_deref().unwrap_or(&self.dest)
    }

    /// A handle to write through (the same open file).
    pub fn writer(&self) -> Result<File> {
        self.file
            .try_clone()
            .with_context(|| format!("duplicating the handle of {}", self.target.display()))
    }

    /// A handle whose errors name the output and the byte they happened
    /// at ("writing out.json at byte 4096: No space left on device").
    pub fn named_writer(&self) -> Result<NamedWriter> {
        Ok(NamedWriter {
            file: self.writer()?,
            name: self.target.clone(),
            offset: 0,
        })
    }

    /// The output is complete: synced, and renamed over the target when it
    /// was written to a temporary file. Call after the writer is flushed.
    pub fn commit(mut self) -> Result<()> {
        let shown = self.target.display().to_string();
        if self.regular {
            self.file
                .sync_all()
                .with_context(|| format!("writing {shown} to disk"))?;
        }
        if let Some(temp) = &self.temp {
            std::fs::rename(temp, &self.dest).with_context(|| {
                format!("replacing {shown} with the finished {}", temp.display())
            })?;
            // The rename itself durable (best effort).
            if let Ok(d) = File::open(parent(&self.dest)) {
                let _ = d.sync_all();
            }
        }
        self.committed = true;
        Ok(())
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        let Some(temp) = &self.temp else {
            // Written in place: a recording keeps what it has; an empty new
            // recording (it never started) is removed.
            if self.kind == Kind::Recording
                && self.regular
                && self.file.metadata().map(|m| m.len() == 0).unwrap_or(false)
            {
                let _ = std::fs::remove_file(&self.dest);
            }
            return;
        };
        let written = self.file.metadata().map(|m| m.len()).unwrap_or(0);
        if self.kind == Kind::Recording && written > 0 {
            eprintln!(
                "vfio-trace: the unfinished recording is kept in {}; {} was not replaced",
                temp.display(),
                self.target.display()
            );
        } else {
            let _ = std::fs::remove_file(temp);
        }
    }
}

/// Writes to an output; errors say which file and where.
pub struct NamedWriter {
    file: File,
    name: PathBuf,
    offset: u64,
}

impl NamedWriter {
    fn annotate(&self, e: std::io::Error) -> std::io::Error {
        // The kind is kept (write_all retries Interrupted).
        std::io::Error::new(
            e.kind(),
            format!(
                "writing {} at byte {}: {e}",
                self.name.display(),
                self.offset
            ),
        )
    }
}

impl Write for NamedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.file.write(buf) {
            Ok(n) => {
                self.offset += n as u64;
                Ok(n)
            }
            Err(e) => Err(self.annotate(e)),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush().map_err(|e| self.annotate(e))
    }
}

/// A new file beside `dest` (same directory, so the final rename is
/// atomic), with `mode` if given.
fn temp_beside(dest: &Path, mode: Option<u32>) -> Result<(PathBuf, File)> {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into());
    let dir = parent(dest);
    let pid = std::process::id();
    for n in 0..100u32 {
        let suffix = if n == 0 {
            String::new()
        } else {
            format!("-{n}")
        };
        let temp = dir.join(format!("{name}.vfio-trace-{pid}{suffix}.tmp"));
        match OpenOptions::new().write(true).create_new(true).open(&temp) {
            Ok(file) => {
                if let Some(mode) = mode {
                    use std::os::unix::fs::PermissionsExt;
                    let _ = file.set_permissions(std::fs::Permissions::from_mode(mode));
                }
                return Ok((temp, file));
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(anyhow!(e)).with_context(|| {
                    format!(
                        "creating the temporary file {} (for {})",
                        temp.display(),
                        dest.display()
                    )
                })
            }
        }
    }
    bail!(
        "creating a temporary file for {} in {}: 100 names taken",
        dest.display(),
        dir.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("vt-output-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn names(d: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn an_input_is_never_an_output() {
        let d = dir("input");
        let input = d.join("mine.vtrace");
        std::fs::write(&input, b"precious").unwrap();
        std::fs::hard_link(&input, d.join("link.vtrace")).unwrap();
        std::os::unix::fs::symlink(&input, d.join("sym.vtrace")).unwrap();
        let inputs = [input.clone()];
        for out in [
            input.clone(),
            d.join("link.vtrace"),
            d.join("sym.vtrace"),
            d.join(".").join("mine.vtrace"),
        ] {
            for force in [false, true] {
                let e = Output::create(&out, &inputs, force, Kind::Whole).unwrap_err();
                let msg = format!("{e:#}");
                assert!(msg.contains("is the input"), "{msg}");
                assert!(msg.contains(&out.display().to_string()), "{msg}");
            }
        }
        assert_eq!(std::fs::read(&input).unwrap(), b"precious");
        assert_eq!(names(&d), ["link.vtrace", "mine.vtrace", "sym.vtrace"]);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn an_existing_file_is_kept_unless_forced_and_replaced_whole() {
        let d = dir("force");
        let out = d.join("out.json");
        std::fs::write(&out, b"old").unwrap();
        let e = Output::create(&out, &[], false, Kind::Whole).unwrap_err();
        assert!(format!("{e:#}").contains("--force"), "{e:#}");
        assert_eq!(std::fs::read(&out).unwrap(), b"old");

        let o = Output::create(&out, &[], true, Kind::Whole).unwrap();
        o.writer().unwrap().write_all(b"new").unwrap();
        // Not complete yet: the old content is still there.
        assert_eq!(std::fs::read(&out).unwrap(), b"old");
        o.commit().unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"new");
        assert_eq!(names(&d), ["out.json"]);

        // Failed half-way: the temporary file goes, the target stays.
        let o = Output::create(&out, &[], true, Kind::Whole).unwrap();
        o.writer().unwrap().write_all(b"partial").unwrap();
        drop(o);
        assert_eq!(std::fs::read(&out).unwrap(), b"new");
        assert_eq!(names(&d), ["out.json"]);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_new_export_appears_only_when_complete() {
        let d = dir("new");
        let out = d.join("t.jsonl");
        let o = Output::create(&out, &[], false, Kind::Whole).unwrap();
        o.writer().unwrap().write_all(b"x").unwrap();
        assert!(!out.exists());
        drop(o);
        assert!(names(&d).is_empty());
        let o = Output::create(&out, &[], false, Kind::Whole).unwrap();
        o.writer().unwrap().write_all(b"x").unwrap();
        o.commit().unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"x");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_new_recording_is_at_its_name_from_the_start() {
        let d = dir("rec");
        let out = d.join("r.vtrace");
        let o = Output::create(&out, &[], false, Kind::Recording).unwrap();
        o.writer().unwrap().write_all(b"header").unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"header");
        // An unfinished recording keeps what it has.
        drop(o);
        assert_eq!(std::fs::read(&out).unwrap(), b"header");
        // One that never wrote a byte leaves nothing.
        let empty = d.join("empty.vtrace");
        drop(Output::create(&empty, &[], false, Kind::Recording).unwrap());
        assert!(!empty.exists());
        // --force over an existing one: the old file until the end.
        let o = Output::create(&out, &[], true, Kind::Recording).unwrap();
        o.writer().unwrap().write_all(b"second").unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"header");
        o.commit().unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"second");
        assert_eq!(names(&d), ["r.vtrace"]);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn write_errors_name_the_file_and_the_byte() {
        let o = Output::create(Path::new("/dev/full"), &[], false, Kind::Whole).unwrap();
        let mut w = o.named_writer().unwrap();
        let e = w.write_all(b"x").unwrap_err().to_string();
        assert!(e.starts_with("writing /dev/full at byte 0: "), "{e}");
        assert_eq!(e.matches("os error").count(), 1, "{e}");
    }

    #[test]
    fn devices_directories_and_missing_dirs() {
        let d = dir("odd");
        // /dev/null needs no --force and is written in place.
        let o = Output::create(Path::new("/dev/null"), &[], false, Kind::Whole).unwrap();
        o.writer().unwrap().write_all(b"x").unwrap();
        o.commit().unwrap();
        let e = Output::create(&d, &[], true, Kind::Whole).unwrap_err();
        assert!(format!("{e:#}").contains("directory"), "{e:#}");
        let e = Output::create(&d.join("no/such/x"), &[], false, Kind::Whole).unwrap_err();
        assert!(format!("{e:#}").contains("no/such"), "{e:#}");
        let e = Output::create(Path::new(""), &[], false, Kind::Whole).unwrap_err();
        assert!(format!("{e:#}").contains("empty"), "{e:#}");
        let _ = std::fs::remove_dir_all(&d);
    }
}
