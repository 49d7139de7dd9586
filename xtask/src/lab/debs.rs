//! Debian packages the lab boots from (kernels, busybox for the guest's
//! architecture), downloaded with apt, verified against apt's SHA256,
//! unpacked once into the machine-wide cache and re-verified on every use.

use std::{
    fs,
    io::Read,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use super::Arch;
use crate::step::{self, cmd, output};

/// The kernel ABI measured in shared/lab.md; `VFIO_TRACE_LAB_KERNEL`
/// (e.g. `6.12.95+deb12`) picks another from bookworm-backports.
pub const DEFAULT_KERNEL_ABI: &str = "6.12.95+deb12";

/// `~/.cache/vfio-trace/lab` (shared by every clone on the machine).
pub fn cache_root() -> PathBuf {
    crate::setup::cache_dir().join("lab")
}

pub fn sha256_file(p: &Path) -> Result<String> {
    let mut f = fs::File::open(p).with_context(|| format!("opening {}", p.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A package unpacked in the cache: `root` holds the `dpkg -x` tree.
pub struct Unpacked {
    pub root: PathBuf,
    pub version: String,
}

/// Makes apt know `arch` packages (foreign architectures need
/// `dpkg --add-architecture` and an `apt-get update`).
fn ensure_apt_arch(arch: &str) -> Result<()> {
    let native = output(&mut cmd("dpkg", ["--print-architecture"]))?;
    let foreign = output(&mut cmd("dpkg", ["--print-foreign-architectures"]))?;
    if native.trim() == arch || foreign.lines().any(|l| l.trim() == arch) {
        return Ok(());
    }
    if !step::is_root() {
        bail!("apt does not know {arch} packages; as root run `dpkg --add-architecture {arch} && apt-get update`");
    }
    eprintln!("    apt: adding architecture {arch} (for the {arch} lab kernel and busybox)");
    step::run(&mut cmd("dpkg", ["--add-architecture", arch]))?;
    step::run(&mut cmd("apt-get", ["update", "-q"]))
}

/// apt's candidate version and SHA256 for `pkg:arch`.
fn apt_candidate(pkg: &str, arch: &str) -> Result<(String, String)> {
    let q = format!("{pkg}:{arch}");
    let show = output(&mut cmd("apt-cache", ["show", "--no-all-versions", &q]))
        .with_context(|| format!("apt does not know {q}; is bookworm-backports in apt's sources (`cargo xtask setup`) and `apt-get update` done?"))?;
    let field = |name: &str| {
        show.lines()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
    };
    let version = field("Version:").with_context(|| format!("no Version for {q}"))?;
    let sha = field("SHA256:").with_context(|| format!("no SHA256 for {q}"))?;
    Ok((version, sha))
}

/// Downloads (if needed) and unpacks `pkg` for `arch` under
/// `cache_root()/debs/`, verifying the .deb's SHA256 against apt and the
/// unpacked tree against the stamp written when it was unpacked.
/// `post` runs once on a fresh tree (e.g. depmod) before it is stamped.
pub fn ensure_unpacked(
    pkg: &str,
    arch: &str,
    check: &[&str],
    post: impl FnOnce(&Path) -> Result<()>,
) -> Result<Unpacked> {
    let dir = cache_root().join("debs");
    fs::create_dir_all(&dir)?;
    // A finished unpack is found without asking apt (works offline).
    let prefix = format!("{pkg}_{arch}_");
    let mut found: Vec<PathBuf> = fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with(&prefix) && !n.ends_with(".tmp") && !n.ends_with(".deb")
            })
        })
        .collect();
    found.sort();
    if let Some(u) = found.pop().and_then(|root| verified(root, check)) {
        return Ok(u);
    }
    let (deb, tag, version, sha) = fetch_deb(&dir, pkg, arch)?;
    let root = dir.join(&tag);
    let tmp = dir.join(format!("{tag}.tmp"));
    fs::remove_dir_all(&tmp).ok();
    step::run(&mut cmd(
        "dpkg",
        ["-x".as_ref(), deb.as_os_str(), tmp.as_os_str()],
    ))?;
    post(&tmp)?;
    write_stamp(&tmp, &version, &sha, check)?;
    fs::rename(&tmp, &root)?;
    // The .deb is no longer needed once verified and unpacked.
    fs::remove_file(&deb).ok();
    Ok(Unpacked { root, version })
}

/// A finished unpack at `root`, its stamp verified; a damaged one is
/// removed (and `None`: unpack again).
fn verified(root: PathBuf, check: &[&str]) -> Option<Unpacked> {
    match verify_stamp(&root, check) {
        Ok(version) => Some(Unpacked { root, version }),
        Err(e) => {
            eprintln!(
                "    cache: {} is damaged ({e:#}); unpacking again",
                root.display()
            );
            fs::remove_dir_all(&root).ok();
            None
        }
    }
}

/// Downloads `pkg:arch` (apt's candidate) into `dir` unless a verified
/// copy is there: (the .deb, its cache tag, version, SHA256).
fn fetch_deb(dir: &Path, pkg: &str, arch: &str) -> Result<(PathBuf, String, String, String)> {
    ensure_apt_arch(arch)?;
    let (version, sha) = apt_candidate(pkg, arch)?;
    let tag = format!("{pkg}_{arch}_{}", version.replace([':', '~', '+'], "_"));
    let deb = dir.join(format!("{tag}.deb"));
    if !deb.exists() || sha256_file(&deb)? != sha {
        eprintln!("    downloading {pkg}:{arch}={version} with apt-get");
        let tmp = dir.join(format!("{tag}.dl.tmp"));
        fs::remove_dir_all(&tmp).ok();
        fs::create_dir_all(&tmp)?;
        step::run(
            cmd(
                "apt-get",
                ["download", "-q", &format!("{pkg}:{arch}={version}")],
            )
            .current_dir(&tmp),
        )?;
        let got = fs::read_dir(&tmp)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|x| x == "deb"))
            .context("apt-get download left no .deb")?;
        fs::rename(&got, &deb)?;
        fs::remove_dir_all(&tmp).ok();
    }
    let actual = sha256_file(&deb)?;
    if actual != sha {
        fs::remove_file(&deb).ok();
        bail!(
            "{} has SHA256 {actual}, apt says {sha}; removed, run again",
            deb.display()
        );
    }
    Ok((deb, tag, version, sha))
}

/// Several packages unpacked into one tree `cache_root()/debs/<name>`
/// (e.g. kernel headers, which refer to each other's paths), verified like
/// [`ensure_unpacked`]; `post` runs once on a fresh tree.
pub fn ensure_unpacked_set(
    name: &str,
    pkgs: &[(&str, &str)],
    check: &[&str],
    post: impl FnOnce(&Path) -> Result<()>,
) -> Result<Unpacked> {
    let dir = cache_root().join("debs");
    fs::create_dir_all(&dir)?;
    let root = dir.join(name);
    if root.exists() {
        if let Some(u) = verified(root.clone(), check) {
            return Ok(u);
        }
    }
    let tmp = dir.join(format!("{name}.tmp"));
    fs::remove_dir_all(&tmp).ok();
    let (mut versions, mut shas) = (Vec::new(), Vec::new());
    for (pkg, arch) in pkgs {
        let (deb, _, version, sha) = fetch_deb(&dir, pkg, arch)?;
        step::run(&mut cmd(
            "dpkg",
            ["-x".as_ref(), deb.as_os_str(), tmp.as_os_str()],
        ))?;
        fs::remove_file(&deb).ok();
        versions.push(format!("{pkg}={version}"));
        shas.push(sha);
    }
    post(&tmp)?;
    let version = versions.join(" ");
    write_stamp(&tmp, &version, &shas.join(" "), check)?;
    fs::rename(&tmp, &root)?;
    Ok(Unpacked { root, version })
}

const STAMP: &str = ".vfio-trace-unpacked.json";

fn write_stamp(root: &Path, version: &str, deb_sha: &str, check: &[&str]) -> Result<()> {
    let mut files = serde_json::Map::new();
    for rel in check {
        files.insert(rel.to_string(), sha256_file(&root.join(rel))?.into());
    }
    let v = serde_json::json!({ "version": version, "deb_sha256": deb_sha, "files": files });
    fs::write(root.join(STAMP), serde_json::to_vec_pretty(&v)?)?;
    Ok(())
}

fn verify_stamp(root: &Path, check: &[&str]) -> Result<String> {
    let text = fs::read(root.join(STAMP)).context("no stamp (interrupted unpack?)")?;
    let v: serde_json::Value = serde_json::from_slice(&text)?;
    for rel in check {
        let want = v["files"][rel]
            .as_str()
            .with_context(|| format!("stamp lacks {rel}"))?;
        if sha256_file(&root.join(rel))? != want {
            bail!("{rel} changed since it was unpacked");
        }
    }
    Ok(v["version"].as_str().unwrap_or("?").to_string())
}

/// A lab kernel: the image QEMU boots and its module tree (with modules.dep).
pub struct Kernel {
    pub release: String,
    pub version: String,
    pub image: PathBuf,
    pub modules: PathBuf,
}

pub fn kernel(arch: Arch) -> Result<Kernel> {
    let abi = std::env::var("VFIO_TRACE_LAB_KERNEL").unwrap_or_else(|_| DEFAULT_KERNEL_ABI.into());
    let release = format!("{abi}-{}", arch.deb());
    let pkg = format!("linux-image-{release}-unsigned");
    let image = format!("boot/vmlinuz-{release}");
    let dep = format!("lib/modules/{release}/modules.dep");
    let rel2 = release.clone();
    let u = ensure_unpacked(&pkg, arch.deb(), &[&image, &dep], move |root| {
        // The .deb ships no modules.dep (depmod runs at install time).
        step::run(&mut cmd(
            "depmod",
            ["-b".as_ref(), root.as_os_str(), rel2.as_ref()],
        ))
    })?;
    Ok(Kernel {
        image: u.root.join(&image),
        modules: u.root.join(format!("lib/modules/{release}")),
        release,
        version: u.version,
    })
}

/// A static busybox for `arch` (Debian's busybox-static).
pub fn busybox(arch: Arch) -> Result<PathBuf> {
    let u = ensure_unpacked("busybox-static", arch.deb(), &["bin/busybox"], |_| Ok(()))?;
    Ok(u.root.join("bin/busybox"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_detects_a_changed_file() {
        let root =
            std::env::temp_dir().join(format!("vfio-trace-stamp-test-{}", std::process::id()));
        fs::create_dir_all(root.join("boot")).unwrap();
        fs::write(root.join("boot/vmlinuz"), b"kernel").unwrap();
        write_stamp(&root, "1.0", "abc", &["boot/vmlinuz"]).unwrap();
        assert_eq!(verify_stamp(&root, &["boot/vmlinuz"]).unwrap(), "1.0");
        fs::write(root.join("boot/vmlinuz"), b"kernel, truncated").unwrap();
        assert!(verify_stamp(&root, &["boot/vmlinuz"]).is_err());
        assert!(verify_stamp(&root, &["boot/missing"]).is_err());
        fs::remove_dir_all(&root).unwrap();
    }
}
