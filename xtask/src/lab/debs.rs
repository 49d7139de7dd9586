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

/// Where apt looks: the machine's own sources (bookworm, bookworm-security,
/// bookworm-backports once `cargo xtask setup` added it), or the lab's own
/// apt configuration for Debian unstable under
/// `cache_root()/apt-sid/` (the machine's sources stay untouched).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AptSource {
    Machine,
    Unstable,
}

impl AptSource {
    pub fn label(self) -> &'static str {
        match self {
            AptSource::Machine => "the machine's apt sources",
            AptSource::Unstable => "Debian unstable (the lab's own apt configuration)",
        }
    }

    /// `prog` (apt-get, apt-cache) run against this source.
    fn cmd(self, prog: &str, args: &[&str]) -> Result<std::process::Command> {
        let mut c = cmd(prog, args);
        if self == AptSource::Unstable {
            c.env("APT_CONFIG", unstable_apt_config(false)?);
        }
        Ok(c)
    }
}

/// The directory of the lab's unstable apt configuration.
fn apt_sid_dir() -> PathBuf {
    cache_root().join("apt-sid")
}

/// The mirror URI the machine's own Debian sources use (deb822 `URIs:` or
/// one-line `deb URI suite`), so unstable comes from the same mirror.
fn machine_mirror() -> String {
    let mut texts = vec![fs::read_to_string("/etc/apt/sources.list").unwrap_or_default()];
    if let Ok(rd) = fs::read_dir("/etc/apt/sources.list.d") {
        let mut paths: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        texts.extend(paths.iter().filter_map(|p| fs::read_to_string(p).ok()));
    }
    mirror_in(&texts.join("\n")).unwrap_or_else(|| "http://deb.debian.org/debian".into())
}

/// The first Debian archive URI (not -security) in sources text.
fn mirror_in(text: &str) -> Option<String> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .flat_map(|l| {
            let l = l.trim();
            let words: Vec<&str> = if let Some(u) = l.strip_prefix("URIs:") {
                u.split_whitespace().collect()
            } else if let Some(rest) = l.strip_prefix("deb ") {
                // `deb [options] URI suite ...`
                let rest = rest.trim_start();
                let rest = match rest.strip_prefix('[') {
                    Some(r) => r.split_once(']').map_or("", |(_, after)| after),
                    None => rest,
                };
                rest.split_whitespace().take(1).collect()
            } else {
                vec![]
            };
            words.into_iter().map(str::to_string).collect::<Vec<_>>()
        })
        .find(|u| u.ends_with("/debian") || u.ends_with("/debian/"))
}

/// Writes (once) the unstable apt configuration and, when its package
/// lists are missing, or older than a day, or `refresh`, runs
/// `apt-get update` with it. Returns the `APT_CONFIG` path.
pub fn unstable_apt_config(refresh: bool) -> Result<PathBuf> {
    let d = apt_sid_dir();
    for sub in [
        "lists/partial",
        "cache/archives/partial",
        "state",
        "parts",
        "prefs",
    ] {
        fs::create_dir_all(d.join(sub))?;
    }
    let mirror = machine_mirror();
    let sources = format!(
        "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] {mirror} unstable main\n"
    );
    let conf = format!(
        "// Written by cargo xtask lab (vfio-trace): Debian unstable for lab kernels only.\n\
         Dir::State \"{d}/state\";\n\
         Dir::State::lists \"{d}/lists\";\n\
         Dir::State::status \"/dev/null\";\n\
         Dir::Etc::sourcelist \"{d}/sources.list\";\n\
         Dir::Etc::sourceparts \"{d}/parts\";\n\
         Dir::Etc::parts \"{d}/parts\";\n\
         Dir::Etc::preferencesparts \"{d}/prefs\";\n\
         Dir::Cache \"{d}/cache\";\n\
         APT::Architectures {{ \"amd64\"; \"arm64\"; }};\n\
         Acquire::Languages \"none\";\n\
         // The mirror may be a dated snapshot: signatures are still checked.\n\
         Acquire::Check-Valid-Until \"false\";\n\
         APT::Sandbox::User \"root\";\n",
        d = d.display()
    );
    let conf_path = d.join("apt.conf");
    if fs::read_to_string(d.join("sources.list")).ok().as_deref() != Some(sources.as_str()) {
        fs::write(d.join("sources.list"), &sources)?;
    }
    if fs::read_to_string(&conf_path).ok().as_deref() != Some(conf.as_str()) {
        fs::write(&conf_path, &conf)?;
    }
    let stale = lists_age(&d.join("lists")).is_none_or(|age| age.as_secs() > 24 * 3600);
    if refresh || stale {
        eprintln!(
            "    apt: updating Debian unstable's package lists ({mirror}, config {})",
            conf_path.display()
        );
        let mut c = cmd("apt-get", ["update", "-q"]);
        c.env("APT_CONFIG", &conf_path);
        step::run(&mut c)
            .context("apt-get update for Debian unstable (the lab's own apt configuration)")?;
    }
    Ok(conf_path)
}

/// Age of the newest `*Packages*` list in `dir`.
fn lists_age(dir: &Path) -> Option<std::time::Duration> {
    fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("Packages"))
        .filter_map(|e| e.metadata().ok()?.modified().ok())
        .max()
        .and_then(|t| t.elapsed().ok())
}

/// The newest Debian kernel ABI in unstable for `arch` (e.g.
/// `7.2.13+deb14`), from the package names `linux-image-<ABI>-<arch>`.
pub fn newest_unstable_abi(arch: Arch) -> Result<String> {
    // `newest` follows the moving target: lists older than an hour are
    // refreshed.
    let d = apt_sid_dir();
    let fresh = lists_age(&d.join("lists")).is_some_and(|a| a.as_secs() < 3600);
    unstable_apt_config(!fresh)?;
    let pattern = format!("^linux-image-[0-9].*-{}$", arch.deb());
    let out =
        output(&mut AptSource::Unstable.cmd("apt-cache", &["search", "--names-only", &pattern])?)?;
    let suffix = format!("-{}", arch.deb());
    let mut abis: Vec<String> = out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter_map(|p| p.strip_prefix("linux-image-")?.strip_suffix(&suffix))
        .filter(|abi| !abi.contains("-cloud") && !abi.contains("-rt") && !abi.ends_with("-16k"))
        .map(str::to_string)
        .collect();
    abis.sort_by(|a, b| super::kernels::compare_abi(a, b));
    abis.pop().with_context(|| {
        format!(
            "Debian unstable lists no linux-image-<ABI>-{} package",
            arch.deb()
        )
    })
}

/// A package's candidate in one apt source: version, SHA256, and where
/// apt would fetch it from (`http://... bookworm/main`).
struct Candidate {
    source: AptSource,
    version: String,
    sha: String,
    origin: String,
}

/// apt's candidate for `pkg:arch` in `source`, if it knows the package.
fn candidate_in(source: AptSource, pkg: &str, arch: &str) -> Result<Option<Candidate>> {
    let q = format!("{pkg}:{arch}");
    let Ok(show) = output(&mut source.cmd("apt-cache", &["show", "--no-all-versions", &q])?) else {
        return Ok(None);
    };
    let field = |name: &str| {
        show.lines()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
    };
    let (Some(version), Some(sha)) = (field("Version:"), field("SHA256:")) else {
        return Ok(None);
    };
    // `apt-cache policy`: the line after the candidate's version names
    // its archive.
    let policy = output(&mut source.cmd("apt-cache", &["policy", &q])?).unwrap_or_default();
    let origin = policy
        .lines()
        .skip_while(|l| {
            !l.trim_start()
                .trim_start_matches("***")
                .trim()
                .starts_with(&version)
        })
        .nth(1)
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .take(2)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| "?".into());
    Ok(Some(Candidate {
        source,
        version,
        sha,
        origin,
    }))
}

/// apt's candidate for `pkg:arch`: the machine's sources first, then
/// Debian unstable.
fn apt_candidate(pkg: &str, arch: &str) -> Result<Candidate> {
    if let Some(c) = candidate_in(AptSource::Machine, pkg, arch)? {
        return Ok(c);
    }
    if let Some(c) = candidate_in(AptSource::Unstable, pkg, arch)? {
        return Ok(c);
    }
    bail!(
        "package {pkg}:{arch} is in neither {} (bookworm, bookworm-security, bookworm-backports \
         after `cargo xtask setup` and `apt-get update`) nor {} ({}); is the name right?",
        AptSource::Machine.label(),
        AptSource::Unstable.label(),
        apt_sid_dir().display()
    )
}

/// Whether any apt source knows `pkg:arch`.
pub fn apt_knows(pkg: &str, arch: &str) -> Result<bool> {
    Ok(candidate_in(AptSource::Machine, pkg, arch)?.is_some()
        || candidate_in(AptSource::Unstable, pkg, arch)?.is_some())
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
    let (deb, tag, version, sha) = fetch_deb(&dir, pkg, arch, None)?;
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
fn fetch_deb(
    dir: &Path,
    pkg: &str,
    arch: &str,
    only: Option<AptSource>,
) -> Result<(PathBuf, String, String, String)> {
    ensure_apt_arch(arch)?;
    let Candidate {
        source,
        version,
        sha,
        origin,
    } = match only {
        None => apt_candidate(pkg, arch)?,
        Some(src) => candidate_in(src, pkg, arch)?
            .with_context(|| format!("package {pkg}:{arch} is not in {}", src.label()))?,
    };
    let tag = format!("{pkg}_{arch}_{}", version.replace([':', '~', '+'], "_"));
    let deb = dir.join(format!("{tag}.deb"));
    if !deb.exists() || sha256_file(&deb)? != sha {
        eprintln!(
            "    downloading {pkg}:{arch}={version} from {origin} ({})",
            source.label()
        );
        let tmp = dir.join(format!("{tag}.dl.tmp"));
        fs::remove_dir_all(&tmp).ok();
        fs::create_dir_all(&tmp)?;
        let spec = format!("{pkg}:{arch}={version}");
        step::run(
            source
                .cmd("apt-get", &["download", "-q", &spec])?
                .current_dir(&tmp),
        )
        .with_context(|| format!("downloading {spec} from {origin}"))?;
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
            "{} has SHA256 {actual}, apt ({origin}) says {sha}; removed, run again",
            deb.display()
        );
    }
    Ok((deb, tag, version, sha))
}

/// Several packages unpacked into one tree `cache_root()/debs/<name>`
/// (e.g. kernel headers, which refer to each other's paths), verified like
/// [`ensure_unpacked`]; `post` runs once on a fresh tree.
/// `pkgs` (package, architecture) is asked only when the tree is not
/// cached yet (it may ask apt).
pub fn ensure_unpacked_set(
    name: &str,
    pkgs: impl FnOnce() -> Result<Vec<(String, String)>>,
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
    for (pkg, arch) in &pkgs()? {
        let (deb, _, version, sha) = fetch_deb(&dir, pkg, arch, None)?;
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

/// Downloads `pkg:arch` from `source` (SHA256-verified like every .deb
/// here) and unpacks it into `into`; returns `pkg=version`.
pub fn extract_into(pkg: &str, arch: &str, source: AptSource, into: &Path) -> Result<String> {
    let dir = cache_root().join("debs");
    fs::create_dir_all(&dir)?;
    let (deb, _, version, _) = fetch_deb(&dir, pkg, arch, Some(source))?;
    step::run(&mut cmd(
        "dpkg",
        ["-x".as_ref(), deb.as_os_str(), into.as_os_str()],
    ))?;
    fs::remove_file(&deb).ok();
    Ok(format!("{pkg}={version}"))
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

/// A lab kernel: the image QEMU boots, its module tree (with modules.dep)
/// and its build configuration (the evidence for what it supports).
pub struct Kernel {
    /// `uname -r` inside the VM, e.g. `6.12.95+deb12-amd64`.
    pub release: String,
    /// Package version(s) as unpacked.
    pub version: String,
    pub image: PathBuf,
    pub modules: PathBuf,
    pub config: PathBuf,
}

/// How Debian packages a kernel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Packaging {
    /// Up to 6.x: `linux-image-R-unsigned` holds `boot/vmlinuz-R`,
    /// `boot/config-R` and `lib/modules/R/`.
    Classic,
    /// 7.x: `linux-image-R` is a meta package over
    /// `linux-binary-unsigned-R` (`usr/lib/modules/R/vmlinuz.unsigned`),
    /// `linux-modules-R` and `linux-base-R` (config, modules.builtin,
    /// modules.order); no /boot.
    Split,
}

impl Packaging {
    fn packages(self, release: &str) -> Vec<String> {
        match self {
            Packaging::Classic => vec![format!("linux-image-{release}-unsigned")],
            Packaging::Split => vec![
                format!("linux-binary-unsigned-{release}"),
                format!("linux-modules-{release}"),
                format!("linux-base-{release}"),
            ],
        }
    }
    /// (image, modules dir, config) inside the unpacked tree.
    fn paths(self, release: &str) -> (String, String, String) {
        match self {
            Packaging::Classic => (
                format!("boot/vmlinuz-{release}"),
                format!("lib/modules/{release}"),
                format!("boot/config-{release}"),
            ),
            Packaging::Split => (
                format!("usr/lib/modules/{release}/vmlinuz.unsigned"),
                format!("usr/lib/modules/{release}"),
                format!("usr/lib/modules/{release}/config"),
            ),
        }
    }
    fn tree_name(self, release: &str) -> String {
        format!("kernel_{release}")
    }
}

/// The kernel with Debian ABI `abi` for `arch`, downloaded and unpacked
/// once into the machine-wide cache (either packaging).
pub fn kernel(arch: Arch, abi: &str) -> Result<Kernel> {
    let release = format!("{abi}-{}", arch.deb());
    let dir = cache_root().join("debs");
    // A finished unpack is used without asking apt (works offline).
    let classic_prefix = format!(
        "{}_{}_",
        Packaging::Classic.packages(&release)[0],
        arch.deb()
    );
    let packaging = if dir
        .join(Packaging::Split.tree_name(&release))
        .join(STAMP)
        .exists()
    {
        Packaging::Split
    } else if fs::read_dir(&dir).ok().is_some_and(|rd| {
        rd.filter_map(|e| e.ok()).any(|e| {
            let n = e.file_name().to_string_lossy().to_string();
            n.starts_with(&classic_prefix) && !n.ends_with(".tmp") && !n.ends_with(".deb")
        })
    }) {
        Packaging::Classic
    } else {
        packaging_of(&release, arch)?
    };
    let (image, modules, config) = packaging.paths(&release);
    let dep = format!("{modules}/modules.dep");
    let check = [image.as_str(), dep.as_str(), config.as_str()];
    let rel2 = release.clone();
    let post = move |root: &Path| {
        if packaging == Packaging::Split {
            // depmod -b (kmod 30) looks under <root>/lib/modules.
            std::os::unix::fs::symlink("usr/lib", root.join("lib"))
                .context("linking lib -> usr/lib in the kernel tree")?;
        }
        // The .debs ship no modules.dep (depmod runs at install time).
        step::run(&mut cmd(
            "depmod",
            ["-b".as_ref(), root.as_os_str(), rel2.as_ref()],
        ))
    };
    let pkgs = packaging.packages(&release);
    let u = match packaging {
        Packaging::Classic => ensure_unpacked(&pkgs[0], arch.deb(), &check, post)?,
        Packaging::Split => {
            let pkgs = pkgs
                .iter()
                .map(|p| (p.clone(), arch.deb().to_string()))
                .collect();
            ensure_unpacked_set(&packaging.tree_name(&release), || Ok(pkgs), &check, post)?
        }
    };
    Ok(Kernel {
        image: u.root.join(&image),
        modules: u.root.join(&modules),
        config: u.root.join(&config),
        release,
        version: u.version,
    })
}

/// The kernel this run boots at `level` (`--kernel`, `--guest-kernel`).
pub fn kernel_at(level: super::kernels::Level, arch: Arch) -> Result<Kernel> {
    kernel(arch, &super::kernels::abi_for(level, arch)?)
}

/// Which packaging Debian uses for `release` (asks apt).
fn packaging_of(release: &str, arch: Arch) -> Result<Packaging> {
    for p in [Packaging::Classic, Packaging::Split] {
        if apt_knows(&p.packages(release)[0], arch.deb())? {
            return Ok(p);
        }
    }
    bail!(
        "no Debian kernel {release}: neither linux-image-{release}-unsigned (bookworm, \
         bookworm-backports, bookworm-security) nor linux-binary-unsigned-{release} (unstable) \
         is known to apt; `cargo xtask lab --kernels` lists the pinned ones"
    )
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
    fn the_mirror_is_read_from_both_sources_formats() {
        let deb822 = "Types: deb\n# http://snapshot.debian.org/archive/debian/2025\nURIs: http://mirror.example/debian\nSuites: bookworm\n";
        assert_eq!(
            mirror_in(deb822).as_deref(),
            Some("http://mirror.example/debian")
        );
        let one_line = "deb https://packages.cloud.google.com/apt cloud-sdk main\n\
                        deb [arch=amd64 signed-by=/k.gpg] http://ftp.de.debian.org/debian bookworm main\n";
        assert_eq!(
            mirror_in(one_line).as_deref(),
            Some("http://ftp.de.debian.org/debian")
        );
        assert_eq!(
            mirror_in("deb http://deb.debian.org/debian-security bookworm-security main"),
            None
        );
    }

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
