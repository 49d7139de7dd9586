//! Debian's kernel headers for building an out-of-tree module (the lab's
//! fault module) against any lab kernel, 6.1 to 7.x, on this machine.
//!
//! What differs between the kernels, and how it is handled:
//! - the headers' Makefile names its other half by absolute path
//!   (`include /usr/src/linux-headers-…-common/Makefile`; 7.x also sets
//!   `KBUILD_OUTPUT=/usr/src/linux-headers-…`): every `/usr/src/` is
//!   pointed at the unpacked tree;
//! - the kbuild tools package is `linux-kbuild-6.1` for 6.1 and
//!   `linux-kbuild-<ABI>` from 6.12 on;
//! - the compiler named in `.kernelvariables` (gcc-12 for 6.1/6.12, gcc-16
//!   for 7.2) may not exist here: the newest installed gcc for the same
//!   target is used instead, without the options it lacks;
//! - unstable's kbuild tools (modpost, objtool, …) need a newer glibc than
//!   this machine's: they run through unstable's own dynamic loader and
//!   libraries, unpacked next to them.

use std::{
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};

use super::{debs, Arch};
use crate::step::{cmd, output};

/// Headers ready for `make -C dir M=... <vars> modules`.
pub struct Headers {
    pub dir: PathBuf,
    /// Extra make variables (compiler substitution).
    pub make_vars: Vec<String>,
    /// What was substituted, for the build log.
    pub notes: Vec<String>,
}

/// The headers of Debian kernel `abi` for `arch`, unpacked once into the
/// machine-wide cache.
pub fn headers(arch: Arch, abi: &str) -> Result<Headers> {
    let release = format!("{abi}-{}", arch.deb());
    let arch_dir = format!("usr/src/linux-headers-{release}");
    let makefile = format!("{arch_dir}/Makefile");
    let host = Arch::host().deb().to_string();
    let abi2 = abi.to_string();
    let h = debs::ensure_unpacked_set(
        &format!("kheaders_{release}"),
        || {
            Ok(vec![
                (format!("linux-headers-{release}"), arch.deb().to_string()),
                // Architecture `all`: apt names it with this machine's architecture.
                (format!("linux-headers-{abi2}-common"), host.clone()),
                // Host tools (fixdep, modpost): this machine's architecture.
                (kbuild_package(&abi2, &host)?, host.clone()),
            ])
        },
        &[makefile.as_str()],
        |root| {
            let final_root = final_root(root)?;
            let mk = root.join(&makefile);
            let text = fs::read_to_string(&mk).with_context(|| format!("{}", mk.display()))?;
            let fixed = repoint_usr_src(&text, &final_root);
            if fixed == text {
                bail!("{} does not name /usr/src/...: {text:?}", mk.display());
            }
            fs::write(&mk, fixed)?;
            wrap_new_glibc_tools(root, &final_root)
        },
    )?;
    let dir = h.root.join(arch_dir);
    let (make_vars, notes) = compiler_vars(&dir)?;
    Ok(Headers {
        dir,
        make_vars,
        notes,
    })
}

/// `linux-kbuild-<ABI>` (6.12 on) or `linux-kbuild-<major.minor>` (6.1).
fn kbuild_package(abi: &str, host: &str) -> Result<String> {
    let exact = format!("linux-kbuild-{abi}");
    if debs::apt_knows(&exact, host)? {
        return Ok(exact);
    }
    let series: Vec<&str> = abi.split(['.', '-', '+']).take(2).collect();
    let by_series = format!("linux-kbuild-{}", series.join("."));
    if debs::apt_knows(&by_series, host)? {
        return Ok(by_series);
    }
    bail!("neither {exact} nor {by_series} is known to apt (the kbuild tools for {abi})")
}

/// Every `/usr/src/` in the headers' Makefile, pointed into `root`.
fn repoint_usr_src(text: &str, root: &Path) -> String {
    text.replace("/usr/src/", &format!("{}/usr/src/", root.display()))
}

/// Where `ensure_unpacked_set` renames its `<name>.tmp` tree when done.
fn final_root(tmp: &Path) -> Result<PathBuf> {
    let name = tmp
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".tmp"))
        .context("unexpected unpack dir")?;
    Ok(tmp.with_file_name(name))
}

/// The highest `GLIBC_2.N` an ELF file asks for (from its version strings).
fn glibc_minor_needed(data: &[u8]) -> Option<u32> {
    let pat = b"GLIBC_2.";
    data.windows(pat.len())
        .enumerate()
        .filter(|(_, w)| *w == pat)
        .filter_map(|(i, _)| {
            let digits: Vec<u8> = data[i + pat.len()..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .copied()
                .collect();
            std::str::from_utf8(&digits).ok()?.parse().ok()
        })
        .max()
}

/// This machine's glibc minor version (`glibc 2.36` → 36).
fn machine_glibc_minor() -> Result<u32> {
    let v = output(&mut cmd("getconf", ["GNU_LIBC_VERSION"]))?;
    v.trim()
        .strip_prefix("glibc 2.")
        .and_then(|m| m.trim().parse().ok())
        .with_context(|| format!("getconf GNU_LIBC_VERSION said {v:?}"))
}

/// Replaces each ELF tool under `usr/lib/linux-kbuild-*` that needs a
/// newer glibc than this machine's with a script running it through
/// Debian unstable's loader and libraries (unpacked into `hostlibs/`).
fn wrap_new_glibc_tools(root: &Path, final_root: &Path) -> Result<()> {
    let have = machine_glibc_minor()?;
    let mut tools = vec![];
    let lib = root.join("usr/lib");
    for kb in fs::read_dir(&lib)?.filter_map(|e| e.ok()) {
        if kb
            .file_name()
            .to_string_lossy()
            .starts_with("linux-kbuild-")
        {
            collect_new_glibc_elves(&kb.path(), have, &mut tools)?;
        }
    }
    if tools.is_empty() {
        return Ok(());
    }
    let host = Arch::host().deb();
    let libs = root.join("hostlibs");
    fs::create_dir_all(&libs)?;
    eprintln!(
        "    kbuild: {} tools need a glibc newer than 2.{have}; running them with Debian unstable's",
        tools.len()
    );
    for pkg in ["libc6", "libelf1t64", "zlib1g", "libzstd1"] {
        debs::extract_into(pkg, host, debs::AptSource::Unstable, &libs)?;
    }
    let triplet = match Arch::host() {
        Arch::X86_64 => "x86_64-linux-gnu",
        Arch::Arm64 => "aarch64-linux-gnu",
    };
    let libdir = format!("usr/lib/{triplet}");
    let loader = fs::read_dir(libs.join(&libdir))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .find(|n| n.starts_with("ld-linux"))
        .context("Debian unstable's libc6 has no ld-linux* loader")?;
    let final_libs = final_root.join("hostlibs");
    for t in tools {
        let real = t.with_file_name(format!(
            "{}.glibc-new",
            t.file_name().unwrap_or_default().to_string_lossy()
        ));
        fs::rename(&t, &real)?;
        let real_final = final_root.join(real.strip_prefix(root)?);
        let script = format!(
            "#!/bin/sh\n# Debian unstable's build of this tool needs a newer glibc: run it with unstable's.\n\
             exec {libs}/{libdir}/{loader} --library-path {libs}/{libdir} --argv0 \"$0\" {real} \"$@\"\n",
            libs = final_libs.display(),
            real = real_final.display(),
        );
        fs::write(&t, script)?;
        fs::set_permissions(&t, fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

fn collect_new_glibc_elves(dir: &Path, have: u32, out: &mut Vec<PathBuf>) -> Result<()> {
    for e in fs::read_dir(dir)?.filter_map(|e| e.ok()) {
        let p = e.path();
        let ft = e.file_type()?;
        if ft.is_dir() {
            collect_new_glibc_elves(&p, have, out)?;
        } else if ft.is_file() {
            let data = fs::read(&p)?;
            if data.starts_with(b"\x7fELF") && glibc_minor_needed(&data).is_some_and(|n| n > have) {
                out.push(p);
            }
        }
    }
    Ok(())
}

/// Options a kernel's gcc had that an older gcc lacks: (the Kconfig symbol
/// that makes Kbuild pass it, a flag to test it with).
const CC_HAS: &[(&str, &str)] = &[(
    "CONFIG_CC_HAS_MIN_FUNCTION_ALIGNMENT",
    "-fmin-function-alignment=16",
)];

/// The kernel's compiler (`.kernelvariables`: `$(CROSS_COMPILE)gcc-N`), or
/// when it is not installed the newest installed `<cross>gcc-M`, with the
/// `CC_HAS` options it lacks turned off.
fn compiler_vars(dir: &Path) -> Result<(Vec<String>, Vec<String>)> {
    let kv = fs::read_to_string(dir.join(".kernelvariables")).unwrap_or_default();
    // The target's triplet from ARCH (6.1 sets CROSS_COMPILE from dpkg
    // variables only when cross-building; 6.12 on names it).
    let cross = match kv
        .lines()
        .find_map(|l| l.trim().strip_prefix("override ARCH = "))
        .map(str::trim)
    {
        Some("x86") => "x86_64-linux-gnu-",
        Some("arm64") => "aarch64-linux-gnu-",
        _ => "",
    }
    .to_string();
    // Cross-building: 6.1 sets CROSS_COMPILE only when told the dpkg
    // architectures (6.12 on name it outright; these are then unused).
    let mut vars = vec![];
    let host_triplet = match Arch::host() {
        Arch::X86_64 => "x86_64-linux-gnu-",
        Arch::Arm64 => "aarch64-linux-gnu-",
    };
    if !cross.is_empty() && cross != host_triplet {
        let deb = |t: &str| {
            if t.starts_with("x86_64") {
                "amd64"
            } else {
                "arm64"
            }
        };
        vars.push(format!("DEB_BUILD_ARCH={}", deb(host_triplet)));
        vars.push(format!("DEB_HOST_ARCH={}", deb(&cross)));
        vars.push(format!("DEB_HOST_GNU_TYPE={}", cross.trim_end_matches('-')));
    }
    let Some(want) = kv
        .lines()
        .find(|l| l.starts_with("CC ="))
        .and_then(|l| l.split("gcc-").nth(1))
        .and_then(|v| v.trim().parse::<u32>().ok())
    else {
        return Ok((vars, vec![]));
    };
    let installed = installed_gcc_versions(&cross);
    if installed.contains(&want) {
        return Ok((vars, vec![]));
    }
    let Some(&have) = installed.iter().filter(|v| **v < want).max() else {
        bail!(
            "the kernel was built with {cross}gcc-{want}; no {cross}gcc-N is installed \
             (apt-get install gcc-12{})",
            if cross.starts_with("aarch64") && !cfg!(target_arch = "aarch64") {
                "-aarch64-linux-gnu"
            } else {
                ""
            }
        );
    };
    let cc = format!("{cross}gcc-{have}");
    // The newer headers use attributes the older gcc ignores (counted_by).
    vars.push(format!("CC={cc}"));
    vars.push("KCFLAGS=-Wno-attributes".to_string());
    let mut notes = vec![format!(
        "the kernel was built with {cross}gcc-{want}, not installed here: building with {cc}"
    )];
    for (sym, flag) in CC_HAS {
        let ok = cmd(
            &cc,
            [*flag, "-x", "c", "-c", "/dev/null", "-o", "/dev/null"],
        )
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
        if !ok {
            vars.push(format!("{sym}="));
            notes.push(format!("{cc} lacks {flag}: {sym} off for this module"));
        }
    }
    Ok((vars, notes))
}

/// N of every `<cross>gcc-N` in PATH.
fn installed_gcc_versions(cross: &str) -> Vec<u32> {
    let prefix = format!("{cross}gcc-");
    let path = std::env::var("PATH").unwrap_or_default();
    let mut v: Vec<u32> = path
        .split(':')
        .filter_map(|d| fs::read_dir(d).ok())
        .flat_map(|rd| rd.filter_map(|e| e.ok()))
        .filter_map(|e| {
            e.file_name()
                .to_string_lossy()
                .strip_prefix(&prefix)?
                .parse()
                .ok()
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_makefile_forms_are_repointed() {
        let root = Path::new("/c/kheaders_x");
        let classic = "include /usr/src/linux-headers-6.12.95+deb12-common/Makefile\n";
        assert_eq!(
            repoint_usr_src(classic, root),
            "include /c/kheaders_x/usr/src/linux-headers-6.12.95+deb12-common/Makefile\n"
        );
        let split = "KBUILD_OUTPUT=/usr/src/linux-headers-7.2.13+deb14-amd64\n\
                     include /usr/src/linux-headers-7.2.13+deb14-common/Makefile\n";
        let fixed = repoint_usr_src(split, root);
        assert!(!fixed.contains(" /usr/src/") && !fixed.contains("=/usr/src/"));
        assert_eq!(fixed.matches("/c/kheaders_x/usr/src/").count(), 2);
    }

    #[test]
    fn glibc_needs_are_read_from_version_strings() {
        let elf = b"\x7fELF....GLIBC_2.2.5\0GLIBC_2.38\0GLIBC_2.34\0";
        assert_eq!(glibc_minor_needed(elf), Some(38));
        assert_eq!(glibc_minor_needed(b"\x7fELF no versions"), None);
    }
}
