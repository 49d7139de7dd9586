//! `cargo xtask setup`: installs what the build, the tests and the lab need,
//! idempotently. Each step checks first and only acts when something is
//! missing; every step prints what it does and how long it took.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context, Result};

use crate::step::{self, cmd, output, step};

#[derive(clap::Args, Debug, Default)]
pub struct SetupArgs {
    /// Skip the Debian packages (build-only machines).
    #[arg(long)]
    pub no_apt: bool,
}

/// bpf-linker release that builds against the nightly's LLVM 22 (see shared/lab.md).
const BPF_LINKER_VERSION: &str = "0.13.0";
const MUSL_TARGETS: &[&str] = &["x86_64-unknown-linux-musl", "aarch64-unknown-linux-musl"];
/// Debian packages the tests and the lab use, and the suite to take them from.
const APT_PACKAGES: &[(&str, Option<&str>)] = &[
    // QEMU 10 from bookworm-backports: matches the image's qemu-utils 10, and
    // the 6.12 lab kernels come from the same suite.
    ("qemu-system-x86", Some("bookworm-backports")),
    ("qemu-system-arm", Some("bookworm-backports")),
    ("busybox-static", None),
    ("cpio", None),
    ("xz-utils", None),
    ("kmod", None),
    ("device-tree-compiler", None),
    ("tmux", None),
    ("bpftrace", None), // bench probes: the comparison tracer, run in VMs from the 9p root
    // C code in dependencies (zstd) for the static musl builds.
    ("musl-tools", None),
    ("gcc-aarch64-linux-gnu", None),
    ("libc6-dev-arm64-cross", None),
    // The lab's fault module (xtask/src/lab/kfault.c) against Debian's
    // kernel headers, which name gcc-12 and need make.
    ("gcc-12", None),
    ("make", None),
];
pub const BACKPORTS_SOURCES: &str = "/etc/apt/sources.list.d/vfio-trace-bookworm-backports.sources";

pub fn run(args: &SetupArgs) -> Result<()> {
    step("nightly toolchain with rust-src", nightly_rust_src)?;
    step("musl targets (x86_64, aarch64)", musl_targets)?;
    step("bpf-linker against the nightly's LLVM", bpf_linker)?;
    if args.no_apt {
        eprintln!("==> Debian packages: skipped (--no-apt)");
    } else {
        step("Debian packages for the tests and the lab", apt_packages)?;
    }
    step("tracefs mounted", tracefs)?;
    eprintln!("setup: everything is in place");
    Ok(())
}

fn nightly_rust_src() -> Result<()> {
    let toolchains = output(&mut cmd("rustup", ["toolchain", "list"]))?;
    if !toolchains.lines().any(|l| l.starts_with("nightly")) {
        step::run(&mut cmd(
            "rustup",
            ["toolchain", "install", "nightly", "--profile", "minimal"],
        ))?;
    }
    let installed = output(&mut cmd(
        "rustup",
        ["component", "list", "--installed", "--toolchain", "nightly"],
    ))?;
    if installed.lines().any(|l| l.starts_with("rust-src")) {
        eprintln!("    rust-src: present");
        return Ok(());
    }
    step::run(&mut cmd(
        "rustup",
        ["component", "add", "rust-src", "--toolchain", "nightly"],
    ))
}

fn musl_targets() -> Result<()> {
    let installed = output(&mut cmd("rustup", ["target", "list", "--installed"]))?;
    let missing: Vec<&str> = MUSL_TARGETS
        .iter()
        .copied()
        .filter(|t| !installed.lines().any(|l| l.trim() == *t))
        .collect();
    if missing.is_empty() {
        eprintln!("    musl targets: present");
        return Ok(());
    }
    let mut c = cmd("rustup", ["target", "add"]);
    c.args(&missing);
    step::run(&mut c)
}

/// The nightly's LLVM, from `rustc +nightly -vV` and its sysroot.
struct NightlyLlvm {
    major: String,
    /// The versioned shared object in the sysroot, e.g. libLLVM.so.22.1-rust-1.97.0-nightly.
    lib: PathBuf,
}

fn nightly_llvm() -> Result<NightlyLlvm> {
    let vv = output(&mut cmd("rustc", ["+nightly", "-vV"]))?;
    let version = vv
        .lines()
        .find_map(|l| l.strip_prefix("LLVM version: "))
        .context("`rustc +nightly -vV` printed no LLVM version")?;
    let major = version.split('.').next().unwrap_or_default().to_string();
    let sysroot = output(&mut cmd("rustc", ["+nightly", "--print", "sysroot"]))?;
    let libdir = Path::new(sysroot.trim()).join("lib");
    let lib = fs::read_dir(&libdir)
        .with_context(|| format!("reading {}", libdir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libLLVM.so."))
        })
        .with_context(|| {
            format!(
                "no libLLVM.so.* in {} (nightly without LLVM?)",
                libdir.display()
            )
        })?;
    Ok(NightlyLlvm { major, lib })
}

pub fn cache_dir() -> PathBuf {
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(&home).join(".cache"))
        .join("vfio-trace")
}

fn cargo_bin() -> PathBuf {
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(&home).join(".cargo"))
        .join("bin")
}

fn bpf_linker() -> Result<()> {
    let llvm = nightly_llvm()?;
    let soname = llvm.lib.file_name().unwrap().to_string_lossy().into_owned();
    let linker = cargo_bin().join("bpf-linker");
    let stamp = cache_dir().join("bpf-linker.stamp");
    let want_stamp = format!("{BPF_LINKER_VERSION} {soname}\n");
    // Installed, built for this nightly's LLVM, and runs without rustup's
    // environment (the library is found through the prefix it was linked with).
    if linker.is_file() && fs::read_to_string(&stamp).ok().as_deref() == Some(&want_stamp) {
        let mut check = Command::new(&linker);
        check
            .arg("--version")
            .env_clear()
            .env("PATH", "/usr/bin:/bin");
        if output(&mut check).is_ok() {
            eprintln!("    bpf-linker {BPF_LINKER_VERSION}: present, linked to {soname}");
            return Ok(());
        }
        eprintln!("    bpf-linker is installed but does not run on its own: rebuilding");
    }
    // A prefix whose lib/ has both the unversioned name (for the build) and
    // the exact soname (for the run-time loader) pointing at the nightly's LLVM.
    let prefix = cache_dir().join(format!("llvm-prefix-{}", llvm.major));
    let libdir = prefix.join("lib");
    fs::create_dir_all(&libdir).with_context(|| format!("creating {}", libdir.display()))?;
    for name in ["libLLVM.so", soname.as_str()] {
        let link = libdir.join(name);
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink(&llvm.lib, &link)
            .with_context(|| format!("symlink {} -> {}", link.display(), llvm.lib.display()))?;
    }
    let mut install = cmd(
        "cargo",
        [
            "install",
            &format!("bpf-linker@{BPF_LINKER_VERSION}"),
            "--locked",
            "--force",
            "--no-default-features",
            "--features",
            &format!("llvm-{}", llvm.major),
        ],
    );
    install.env("LLVM_PREFIX", &prefix);
    step::run(&mut install)?;
    let mut check = Command::new(&linker);
    check
        .arg("--version")
        .env_clear()
        .env("PATH", "/usr/bin:/bin");
    output(&mut check).context("the freshly built bpf-linker does not run")?;
    fs::create_dir_all(cache_dir())?;
    fs::write(&stamp, want_stamp)?;
    Ok(())
}

fn dpkg_installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

/// The URI of the machine's Debian mirror, from its existing apt sources.
fn debian_mirror() -> Result<String> {
    let deb822 = fs::read_to_string("/etc/apt/sources.list.d/debian.sources").unwrap_or_default();
    if let Some(uri) = deb822
        .lines()
        .filter_map(|l| l.strip_prefix("URIs:"))
        .map(str::trim)
        .find(|u| !u.contains("security"))
    {
        return Ok(uri.split_whitespace().next().unwrap_or(uri).to_string());
    }
    let list = fs::read_to_string("/etc/apt/sources.list").unwrap_or_default();
    list.lines()
        .map(str::trim)
        .filter(|l| l.starts_with("deb ") && !l.contains("security"))
        .find_map(|l| l.split_whitespace().find(|w| w.contains("://")))
        .map(str::to_owned)
        .context("no Debian mirror found in /etc/apt/sources.list(.d)")
}

/// Makes bookworm-backports known to apt; returns whether it had to.
pub fn ensure_backports() -> Result<bool> {
    if Path::new(BACKPORTS_SOURCES).exists() {
        return Ok(false);
    }
    let mirror = debian_mirror()?;
    let text = format!(
        "# Added by `cargo xtask setup` (vfio-trace): lab kernels and QEMU 10.\n\
         Types: deb\nURIs: {mirror}\nSuites: bookworm-backports\nComponents: main\n\
         Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    );
    fs::write(BACKPORTS_SOURCES, text).with_context(|| format!("writing {BACKPORTS_SOURCES}"))?;
    eprintln!("    added {BACKPORTS_SOURCES} (mirror {mirror})");
    Ok(true)
}

fn apt_packages() -> Result<()> {
    let missing: Vec<_> = APT_PACKAGES
        .iter()
        .filter(|(p, _)| !dpkg_installed(p))
        .collect();
    let backports_missing = !Path::new(BACKPORTS_SOURCES).exists();
    if missing.is_empty() && !backports_missing {
        eprintln!("    all {} packages present", APT_PACKAGES.len());
        return Ok(());
    }
    let names: Vec<&str> = missing.iter().map(|(p, _)| *p).collect();
    if !step::is_root() {
        bail!(
            "not root: run these as root, then `cargo xtask setup` again:\n  \
             (add bookworm-backports: `sudo cargo xtask setup` does it)\n  \
             sudo apt-get update && sudo apt-get install -y -t bookworm-backports {}",
            names.join(" ")
        );
    }
    ensure_backports()?;
    step::run(cmd("apt-get", ["update", "-q"]).env("DEBIAN_FRONTEND", "noninteractive"))?;
    for suite in [Some("bookworm-backports"), None] {
        let group: Vec<&str> = missing
            .iter()
            .filter(|(_, s)| *s == suite)
            .map(|(p, _)| *p)
            .collect();
        if group.is_empty() {
            continue;
        }
        let mut c = cmd(
            "apt-get",
            ["install", "-y", "-q", "--no-install-recommends"],
        );
        if let Some(s) = suite {
            c.args(["-t", s]);
        }
        c.args(&group).env("DEBIAN_FRONTEND", "noninteractive");
        step::run(&mut c)?;
    }
    Ok(())
}

fn tracefs() -> Result<()> {
    if Path::new("/sys/kernel/tracing/events").is_dir() {
        eprintln!("    /sys/kernel/tracing: mounted");
        return Ok(());
    }
    if !step::is_root() {
        eprintln!("    not root: tracefs not mounted; the root tests will say they skip");
        return Ok(());
    }
    step::run(&mut cmd(
        "mount",
        ["-t", "tracefs", "nodev", "/sys/kernel/tracing"],
    ))
}
