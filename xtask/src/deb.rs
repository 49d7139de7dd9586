//! `cargo xtask deb`: a Debian package of vfio-trace, built with
//! `dpkg-deb` alone (no debhelper): the static musl release binary (the one
//! the lab runs), the man pages (gzipped, /usr/share/man/man1), the bash,
//! zsh and fish completions in their standard directories, the systemd unit
//! `dist/vfio-trace.service` when the tree has it, the copyright file and a
//! changelog. `Depends` comes from `dpkg-shlibdeps` (none for the static
//! binary). With `--lintian`, lintian checks the package (installed with
//! apt if missing).
//!
//! [`install_test`] is what `cargo xtask test` runs as root: installs the
//! package with `apt-get install ./vfio-trace_*.deb`, uses it (version, man
//! page, completion script) and removes it, leaving the machine as it was.

use std::{
    fmt::Write as _,
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context, Result};

use crate::{
    build, man,
    step::{self, cmd, step, workspace_root},
};

const PACKAGE: &str = "vfio-trace";
const MAINTAINER: &str = "vfio-trace developers <vfio-trace@example.invalid>";
const UNIT: &str = "dist/vfio-trace.service";

#[derive(clap::Args, Debug)]
pub struct DebArgs {
    /// Directory for the package (relative to the workspace).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_OUT)]
    pub out: PathBuf,
    /// Package this vfio-trace binary instead of building the static musl
    /// release binary for this machine's architecture.
    #[arg(long, value_name = "BIN")]
    pub binary: Option<PathBuf>,
    /// Check the package with lintian (installed with apt if missing).
    #[arg(long)]
    pub lintian: bool,
    /// Then install it with apt, use it and remove it (root; what
    /// `cargo xtask test` does).
    #[arg(long)]
    pub install_test: bool,
}

impl Default for DebArgs {
    fn default() -> Self {
        DebArgs {
            out: PathBuf::from(DEFAULT_OUT),
            binary: None,
            lintian: false,
            install_test: false,
        }
    }
}

const DEFAULT_OUT: &str = "target/deb";

pub fn run(a: &DebArgs) -> Result<()> {
    let deb = build_deb(a)?;
    eprintln!("    {}", deb.display());
    if a.lintian {
        step("lintian", || lintian(&deb))?;
    }
    if a.install_test {
        install_test(&deb)?;
    }
    Ok(())
}

/// Debian's name of this machine's architecture and the musl target for it.
fn arch() -> Result<(String, &'static str)> {
    let arch = step::output(&mut cmd("dpkg", ["--print-architecture"]))?
        .trim()
        .to_string();
    let target = match arch.as_str() {
        "amd64" => "x86_64-unknown-linux-musl",
        "arm64" => "aarch64-unknown-linux-musl",
        other => bail!("no musl target known for the Debian architecture {other}"),
    };
    Ok((arch, target))
}

/// Builds the package; returns its path.
pub fn build_deb(a: &DebArgs) -> Result<PathBuf> {
    let root = workspace_root();
    // dpkg-deb and gzip are on every Debian system; these may not be.
    ensure_tool("dpkg-shlibdeps", "dpkg-dev")?;
    ensure_tool("strip", "binutils")?;
    let (arch, target) = arch()?;
    let bin = match &a.binary {
        Some(b) => b.clone(),
        None => step(&format!("vfio-trace for {target} (release)"), || {
            build::musl_binary(target, "vfio-trace")
        })?,
    };
    let version = step::output(Command::new(&bin).arg("--version"))?;
    let Some(version) = version.trim().strip_prefix("vfio-trace ") else {
        bail!("{} --version said {version:?}", bin.display());
    };
    let version = version.to_string();
    let out = root.join(&a.out);
    let stage = out.join(format!("{PACKAGE}_{version}_{arch}"));
    if stage.exists() {
        fs::remove_dir_all(&stage).with_context(|| format!("removing {}", stage.display()))?;
    }
    step("stage the package tree", || {
        stage_tree(&stage, &bin, &root, &version)
    })?;
    let depends = step("Depends (dpkg-shlibdeps)", || shlibdeps(&bin, &out))?;
    eprintln!(
        "    Depends: {}",
        if depends.is_empty() {
            "none (static binary)"
        } else {
            &depends
        }
    );
    write_control(&stage, &version, &arch, &depends)?;
    let deb = out.join(format!("{PACKAGE}_{version}_{arch}.deb"));
    step("dpkg-deb --build", || {
        step::run(
            cmd("dpkg-deb", ["--root-owner-group", "-Zxz", "--build"])
                .arg(&stage)
                .arg(&deb),
        )
    })?;
    Ok(deb)
}

fn mkdir(p: &Path) -> Result<()> {
    fs::create_dir_all(p).with_context(|| format!("creating {}", p.display()))
}

fn write(p: &Path, data: &[u8], mode: u32) -> Result<()> {
    mkdir(p.parent().expect("a file in the tree"))?;
    fs::write(p, data).with_context(|| format!("writing {}", p.display()))?;
    fs::set_permissions(p, fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {}", p.display()))
}

/// gzip -9n: no name or time stamp, so the same input makes the same bytes.
fn gzip(p: &Path) -> Result<()> {
    step::run(cmd("gzip", ["-9nf"]).arg(p))
}

fn stage_tree(stage: &Path, bin: &Path, root: &Path, version: &str) -> Result<()> {
    // The binary, stripped of its symbol table (the embedded probes are data
    // and stay as they are).
    let dest = stage.join("usr/bin/vfio-trace");
    mkdir(dest.parent().unwrap())?;
    fs::copy(bin, &dest).with_context(|| format!("copying {}", bin.display()))?;
    step::run(cmd("strip", ["--strip-unneeded"]).arg(&dest))?;
    fs::set_permissions(&dest, fs::Permissions::from_mode(0o755))?;

    let man1 = stage.join("usr/share/man/man1");
    man::generate(&dest, &man1)?;
    for page in fs::read_dir(&man1)? {
        let page = page?.path();
        fs::set_permissions(&page, fs::Permissions::from_mode(0o644))?;
        gzip(&page)?;
    }

    for (shell, path) in [
        ("bash", "usr/share/bash-completion/completions/vfio-trace"),
        ("zsh", "usr/share/zsh/vendor-completions/_vfio-trace"),
        (
            "fish",
            "usr/share/fish/vendor_completions.d/vfio-trace.fish",
        ),
    ] {
        let script = step::output(Command::new(&dest).args(["completions", shell]))?;
        if script.is_empty() {
            bail!("vfio-trace completions {shell} wrote nothing");
        }
        write(&stage.join(path), script.as_bytes(), 0o644)?;
    }

    let unit = root.join(UNIT);
    if unit.exists() {
        let text = fs::read(&unit).with_context(|| format!("reading {}", unit.display()))?;
        write(
            &stage.join("lib/systemd/system/vfio-trace.service"),
            &text,
            0o644,
        )?;
    }

    let doc = stage.join("usr/share/doc/vfio-trace");
    write(
        &doc.join("copyright"),
        copyright(&release_date()?).as_bytes(),
        0o644,
    )?;
    // The musl binary is static-pie: an ELF "shared object" with no
    // DT_NEEDED, which lintian takes for a library without dependencies.
    write(
        &stage.join("usr/share/lintian/overrides/vfio-trace"),
        b"# static-pie executable (musl): no shared library dependencies by design
          vfio-trace: shared-library-lacks-prerequisites [usr/bin/vfio-trace]
",
        0o644,
    )?;
    // A native package (no Debian revision): changelog.gz.
    let changelog = doc.join("changelog");
    write(&changelog, changelog_text(version)?.as_bytes(), 0o644)?;
    gzip(&changelog)?;
    // Every directory 0755 whatever the umask.
    for_each_dir(stage, &mut |d| {
        fs::set_permissions(d, fs::Permissions::from_mode(0o755))
            .with_context(|| format!("chmod {}", d.display()))
    })
}

fn for_each_dir(d: &Path, f: &mut dyn FnMut(&Path) -> Result<()>) -> Result<()> {
    f(d)?;
    for e in fs::read_dir(d)? {
        let e = e?;
        if e.file_type()?.is_dir() {
            for_each_dir(&e.path(), f)?;
        }
    }
    Ok(())
}

fn copyright(date: &str) -> String {
    // RFC 2822 date: "Thu, 3 Dec 2026 14:00:00 +0000"; the year is the 4th word.
    let year = date.split_whitespace().nth(3).unwrap_or("2026");
    format!(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\
     Upstream-Name: vfio-trace\n\
     \n\
     Files: *\n\
     Copyright: {year} vfio-trace developers\n\
     License: MIT or Apache-2.0\n \
     vfio-trace is dual-licensed under the MIT license or the Apache License,\n \
     Version 2.0, at your option.\n \
     .\n \
     On Debian systems, the full text of the Apache License, Version 2.0 can\n \
     be found in /usr/share/common-licenses/Apache-2.0.\n \
     .\n \
     Permission is hereby granted, free of charge, to any person obtaining a\n \
     copy of this software and associated documentation files (the\n \
     \"Software\"), to deal in the Software without restriction, including\n \
     without limitation the rights to use, copy, modify, merge, publish,\n \
     distribute, sublicense, and/or sell copies of the Software, and to\n \
     permit persons to whom the Software is furnished to do so, subject to\n \
     the following conditions:\n \
     .\n \
     The above copyright notice and this permission notice shall be included\n \
     in all copies or substantial portions of the Software.\n \
     .\n \
     THE SOFTWARE IS PROVIDED \"AS IS\", WITHOUT WARRANTY OF ANY KIND, EXPRESS\n \
     OR IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF\n \
     MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT.\n \
     IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY\n \
     CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT,\n \
     TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE\n \
     SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.\n"
    )
}

/// The last commit's date (so the same tree makes the same package), else
/// now; RFC 2822.
fn release_date() -> Result<String> {
    let date =
        step::output(cmd("git", ["log", "-1", "--format=%aD"]).current_dir(workspace_root()))
            .map(|d| d.trim().to_string())
            .ok()
            .filter(|d| !d.is_empty());
    Ok(match date {
        Some(d) => d,
        None => step::output(&mut cmd("date", ["-R"]))?.trim().to_string(),
    })
}

/// A native package's changelog.
fn changelog_text(version: &str) -> Result<String> {
    let date = release_date()?;
    Ok(format!(
        "{PACKAGE} ({version}) unstable; urgency=medium\n\n  \
         * Built from the source tree by `cargo xtask deb`.\n\n \
         -- {MAINTAINER}  {date}\n"
    ))
}

/// `Depends` for the binary as `dpkg-shlibdeps` computes it; empty for a
/// static binary. It wants a `debian/control` where it runs: a scratch one.
fn shlibdeps(bin: &Path, out: &Path) -> Result<String> {
    let scratch = out.join("shlibdeps");
    write(
        &scratch.join("debian/control"),
        format!("Source: {PACKAGE}\n\nPackage: {PACKAGE}\nArchitecture: any\n").as_bytes(),
        0o644,
    )?;
    let bin = fs::canonicalize(bin)?;
    let said = step::output(
        cmd("dpkg-shlibdeps", ["-O", "--warnings=0"])
            .arg(&bin)
            .current_dir(&scratch),
    )?;
    let _ = fs::remove_dir_all(&scratch);
    Ok(said
        .lines()
        .find_map(|l| l.strip_prefix("shlibs:Depends="))
        .unwrap_or("")
        .trim()
        .to_string())
}

fn installed_size_kib(stage: &Path) -> Result<u64> {
    fn walk(d: &Path, total: &mut u64) -> Result<()> {
        for e in fs::read_dir(d)? {
            let e = e?;
            let t = e.file_type()?;
            if t.is_dir() {
                if e.file_name() != "DEBIAN" {
                    walk(&e.path(), total)?;
                }
            } else {
                *total += e.metadata()?.len().div_ceil(1024);
            }
        }
        Ok(())
    }
    let mut total = 0;
    walk(stage, &mut total)?;
    Ok(total)
}

fn write_control(stage: &Path, version: &str, arch: &str, depends: &str) -> Result<()> {
    let mut c = String::new();
    let _ = writeln!(c, "Package: {PACKAGE}");
    let _ = writeln!(c, "Version: {version}");
    let _ = writeln!(c, "Architecture: {arch}");
    let _ = writeln!(c, "Maintainer: {MAINTAINER}");
    let _ = writeln!(c, "Installed-Size: {}", installed_size_kib(stage)?);
    if !depends.is_empty() {
        let _ = writeln!(c, "Depends: {depends}");
    }
    let _ = writeln!(c, "Section: admin");
    let _ = writeln!(c, "Priority: optional");
    c.push_str(
        "Description: trace VFIO, IOMMU, MSI doorbell and virtio-iommu activity\n \
         vfio-trace traces VFIO device passthrough with eBPF: host VFIO and\n \
         iommufd DMA map/unmap, IRQ and MSI setup, guest virtio-iommu. It\n \
         rebuilds IOVA to GPA to HVA to HPA chains across guest and host and\n \
         flags MSI doorbell mismatches, in a terminal UI (live), as recordings\n \
         (record/replay) and as a check for CI with exit codes and a JSON or\n \
         JUnit report.\n",
    );
    write(&stage.join("DEBIAN/control"), c.as_bytes(), 0o644)?;
    // md5sums of every file, as dpkg keeps for `dpkg --verify`.
    let mut sums = String::new();
    let mut files = vec![];
    collect_files(stage, stage, &mut files)?;
    files.sort();
    for rel in files {
        let out = step::output(cmd("md5sum", [&rel]).current_dir(stage))?;
        sums.push_str(&out);
    }
    write(&stage.join("DEBIAN/md5sums"), sums.as_bytes(), 0o644)
}

fn collect_files(stage: &Path, d: &Path, out: &mut Vec<String>) -> Result<()> {
    for e in fs::read_dir(d)? {
        let e = e?;
        let p = e.path();
        if e.file_type()?.is_dir() {
            if p != stage.join("DEBIAN") {
                collect_files(stage, &p, out)?;
            }
        } else {
            let rel = p.strip_prefix(stage).expect("inside the stage");
            out.push(rel.to_string_lossy().into_owned());
        }
    }
    Ok(())
}

fn apt_get(args: &[&str]) -> Command {
    let mut c = cmd("apt-get", args);
    c.env("DEBIAN_FRONTEND", "noninteractive");
    c
}

/// Installs a Debian package if its command is missing (idempotent; the
/// package lists are refreshed once if the first try fails).
fn ensure_tool(command: &str, package: &str) -> Result<()> {
    if step::output(&mut cmd("sh", ["-c", &format!("command -v {command}")])).is_ok() {
        return Ok(());
    }
    eprintln!("    {command} is missing: installing {package} with apt");
    let install = || {
        step::run(&mut apt_get(&[
            "install",
            "-y",
            "--no-install-recommends",
            package,
        ]))
    };
    install().or_else(|_| {
        step::run(&mut apt_get(&["update"]))?;
        install()
    })
}

fn lintian(deb: &Path) -> Result<()> {
    ensure_tool("lintian", "lintian")?;
    // Errors and warnings fail; informational tags are shown.
    step::run(cmd("lintian", ["--info", "--fail-on", "error,warning"]).arg(deb))
}

/// dpkg's status of the package ("installed", "not-installed", ...).
fn package_status() -> String {
    step::output(&mut cmd(
        "dpkg-query",
        ["-W", "-f=${db:Status-Status}", PACKAGE],
    ))
    .map(|s| s.trim().to_string())
    .unwrap_or_else(|_| "not-installed".into())
}

/// Removes the package when dropped (also when a check failed).
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = step::run(&mut apt_get(&["remove", "-y", PACKAGE]));
    }
}

/// Installs the package with apt, uses it and removes it; fails unless
/// everything worked and the machine is left as found.
pub fn install_test(deb: &Path) -> Result<()> {
    if !step::is_root() {
        bail!("the package test installs with apt: run it as root");
    }
    let before = package_status();
    if before != "not-installed" {
        bail!(
            "{PACKAGE} is already known to dpkg ({before}): the test installs and removes it, \
             so it would not leave the machine as it found it; remove it first"
        );
    }
    for p in ["/usr/bin/vfio-trace", "/usr/share/man/man1/vfio-trace.1.gz"] {
        if Path::new(p).exists() {
            bail!("{p} exists outside the package: the test would remove it");
        }
    }
    ensure_tool("man", "man-db")?;
    let deb = fs::canonicalize(deb)?;
    let unit = workspace_root().join(UNIT).exists();
    step("apt-get install ./vfio-trace_*.deb", || {
        step::run(apt_get(&["install", "-y"]).arg(&deb))
    })?;
    let guard = Installed;
    step("use the installed package", || {
        let v = step::output(&mut cmd("vfio-trace", ["--version"]))?;
        if !v.starts_with("vfio-trace ") {
            bail!("vfio-trace --version said {v:?}");
        }
        eprintln!("    {}", v.trim());
        for page in ["vfio-trace", "vfio-trace-record", "vfio-trace-check"] {
            let at = step::output(&mut cmd("man", ["-w", page]))?;
            if !at.trim().ends_with(&format!("/man1/{page}.1.gz")) {
                bail!("man -w {page} said {at:?}");
            }
        }
        let text = step::output(
            cmd("man", ["vfio-trace-record"])
                .env("MANPAGER", "cat")
                .env("MANWIDTH", "80"),
        )?;
        if !text.contains("--output") {
            bail!("man vfio-trace-record does not show --output:\n{text}");
        }
        let complete = step::output(&mut cmd(
            "bash",
            [
                "-c",
                "source /usr/share/bash-completion/completions/vfio-trace && complete -p vfio-trace",
            ],
        ))?;
        if !complete.contains("vfio-trace") {
            bail!("bash did not register the completion: {complete:?}");
        }
        // What bash offers after `vfio-trace rec`.
        let offered = step::output(&mut cmd(
            "bash",
            [
                "-c",
                "source /usr/share/bash-completion/completions/vfio-trace; \
                 COMP_WORDS=(vfio-trace rec); COMP_CWORD=1; COMP_LINE='vfio-trace rec'; \
                 COMP_POINT=${#COMP_LINE}; \
                 f=$(complete -p vfio-trace | sed -n 's/.*-F \\([^ ]*\\).*/\\1/p'); \
                 $f vfio-trace rec vfio-trace; printf '%s\\n' \"${COMPREPLY[@]}\"",
            ],
        ))?;
        if !offered.lines().any(|l| l.trim() == "record") {
            bail!("bash completion of `vfio-trace rec` offered {offered:?}, not record");
        }
        for f in [
            "/usr/share/zsh/vendor-completions/_vfio-trace",
            "/usr/share/fish/vendor_completions.d/vfio-trace.fish",
        ] {
            if !Path::new(f).is_file() {
                bail!("{f} is not installed");
            }
        }
        if unit && !Path::new("/lib/systemd/system/vfio-trace.service").is_file() {
            bail!("{UNIT} is in the tree but not installed");
        }
        Ok(())
    })?;
    step("apt-get remove vfio-trace", || {
        drop(guard);
        let after = package_status();
        if after != "not-installed" {
            bail!("after apt-get remove, dpkg says {PACKAGE} is {after}");
        }
        for p in [
            "/usr/bin/vfio-trace",
            "/usr/share/man/man1/vfio-trace.1.gz",
            "/usr/share/bash-completion/completions/vfio-trace",
            "/usr/share/doc/vfio-trace",
            "/lib/systemd/system/vfio-trace.service",
        ] {
            if Path::new(p).exists() {
                bail!("{p} is still there after removing the package");
            }
        }
        Ok(())
    })
}
