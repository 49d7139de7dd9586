//! Files made under `sudo` belong to the user who ran sudo: a recording,
//! an export or the UI's log is handed to `SUDO_UID`/`SUDO_GID` when
//! vfio-trace runs as root with both set (as sudo sets them), so the user
//! can move or delete what they asked for without sudo again. Nothing
//! changes otherwise (root without sudo, a plain user, or a bad variable).
//! vfio-trace creates no directory for its outputs (a missing one is an
//! error), so only files are handed over.

use std::{ffi::OsStr, os::fd::AsFd};

use rustix::{
    fs::{fchown, Gid, Uid},
    process::geteuid,
};

/// The invoking user and group when running as root under sudo.
pub fn invoking_user() -> Option<(u32, u32)> {
    if !geteuid().is_root() {
        return None;
    }
    parse(
        std::env::var_os("SUDO_UID").as_deref(),
        std::env::var_os("SUDO_GID").as_deref(),
    )
}

/// `SUDO_UID`/`SUDO_GID` as ids: both set, decimal, not root (nothing to
/// hand back) and not -1 (which means "unchanged" to chown).
fn parse(uid: Option<&OsStr>, gid: Option<&OsStr>) -> Option<(u32, u32)> {
    let id = |v: Option<&OsStr>| -> Option<u32> {
        let n: u32 = v?.to_str()?.parse().ok()?;
        (n != u32::MAX).then_some(n)
    };
    let (uid, gid) = (id(uid)?, id(gid)?);
    (uid != 0).then_some((uid, gid))
}

/// Hands the open file to the invoking user under sudo (see the module
/// docs); a failure is logged, never fatal: the file itself is fine.
pub fn give(file: impl AsFd, shown: &std::path::Path) {
    let Some((uid, gid)) = invoking_user() else {
        return;
    };
    if let Err(e) = fchown(file, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid))) {
        log::warn!(
            "{}: could not give it to the sudo user {uid}:{gid}: {e}",
            shown.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use std::{ffi::OsStr, os::unix::fs::MetadataExt};

    use super::*;

    fn p(u: Option<&str>, g: Option<&str>) -> Option<(u32, u32)> {
        parse(u.map(OsStr::new), g.map(OsStr::new))
    }

    #[test]
    fn sudo_variables() {
        assert_eq!(p(Some("1000"), Some("1001")), Some((1000, 1001)));
        assert_eq!(p(Some("1000"), None), None);
        assert_eq!(p(None, Some("1000")), None);
        assert_eq!(
            p(Some("0"), Some("0")),
            None,
            "sudo from root: nothing to do"
        );
        assert_eq!(p(Some("4294967295"), Some("1")), None, "-1 means unchanged");
        assert_eq!(p(Some("-5"), Some("1")), None);
        assert_eq!(p(Some(" 1000"), Some("1000")), None);
        assert_eq!(p(Some(""), Some("")), None);
        assert_eq!(p(Some("99999999999"), Some("1")), None);
    }

    /// As root with SUDO_UID/SUDO_GID set, the file changes hands; as
    /// anyone else it is left alone. Runs in its own process (the
    /// environment is process-wide): `cargo test` re-runs this binary.
    #[test]
    fn a_file_made_under_sudo_belongs_to_the_user() {
        const CHILD: &str = "VFIO_TRACE_SUDO_OWNER_TEST_CHILD";
        if std::env::var_os(CHILD).is_some() {
            let path = std::path::PathBuf::from(std::env::var_os(CHILD).unwrap());
            let f = std::fs::File::create(&path).unwrap();
            give(&f, &path);
            return;
        }
        let dir = std::env::temp_dir().join(format!("vt-sudo-owner-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("rec.vtrace");
        let me = std::env::current_exe().unwrap();
        let status = std::process::Command::new(me)
            .args([
                "--exact",
                "sudo_owner::tests::a_file_made_under_sudo_belongs_to_the_user",
                "--nocapture",
            ])
            .env(CHILD, &file)
            .env("SUDO_UID", "12345")
            .env("SUDO_GID", "23456")
            .status()
            .unwrap();
        assert!(status.success());
        let m = std::fs::metadata(&file).unwrap();
        if geteuid().is_root() {
            assert_eq!((m.uid(), m.gid()), (12345, 23456));
        } else {
            assert_eq!(m.uid(), geteuid().as_raw(), "not root: left alone");
            eprintln!("not root: checked only that the file is left alone");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
