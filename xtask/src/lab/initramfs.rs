//! The guest's initramfs: a newc cpio (written here) holding a static
//! busybox, the kernel modules a scenario needs (decompressed, in load
//! order) and its /init. Cached by the hash of every input.

use std::{
    collections::HashMap,
    fs,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use crate::step::cmd;

/// One entry of a newc archive.
pub enum Entry {
    Dir(String),
    File {
        path: String,
        mode: u32,
        data: Vec<u8>,
    },
    CharDev {
        path: String,
        major: u32,
        minor: u32,
    },
    Symlink {
        path: String,
        target: String,
    },
}

/// Writes a newc ("070701") cpio archive.
pub fn newc(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut ino = 1u32;
    let mut put = |out: &mut Vec<u8>, name: &str, mode: u32, data: &[u8], rdev: (u32, u32)| {
        let nlink = if mode & 0o170000 == 0o040000 { 2 } else { 1 };
        let fields = [
            ino,
            mode,
            0,
            0,
            nlink,
            0,
            data.len() as u32,
            0,
            0,
            rdev.0,
            rdev.1,
            name.len() as u32 + 1,
            0,
        ];
        ino += 1;
        out.extend_from_slice(b"070701");
        for f in fields {
            out.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        while !out.len().is_multiple_of(4) {
            out.push(0);
        }
        out.extend_from_slice(data);
        while !out.len().is_multiple_of(4) {
            out.push(0);
        }
    };
    for e in entries {
        match e {
            Entry::Dir(p) => put(&mut out, p, 0o040755, &[], (0, 0)),
            Entry::File { path, mode, data } => put(&mut out, path, 0o100000 | mode, data, (0, 0)),
            Entry::CharDev { path, major, minor } => {
                put(&mut out, path, 0o020600, &[], (*major, *minor))
            }
            Entry::Symlink { path, target } => {
                put(&mut out, path, 0o120777, target.as_bytes(), (0, 0))
            }
        }
    }
    put(&mut out, "TRAILER!!!", 0, &[], (0, 0));
    out
}

fn norm(name: &str) -> String {
    name.replace('-', "_")
}

/// Module file stem from a modules.dep path (`.../vfio-pci.ko.xz` → `vfio-pci`).
fn stem(path: &str) -> &str {
    let f = path.rsplit('/').next().unwrap_or(path);
    f.split(".ko").next().unwrap_or(f)
}

/// Resolves `wanted` module names against modules.dep into load order
/// (dependencies first), as paths relative to the module dir. Names in
/// modules.builtin are skipped.
pub fn resolve_modules(dep: &str, builtin: &str, wanted: &[&str]) -> Result<Vec<String>> {
    let mut deps: HashMap<String, (String, Vec<String>)> = HashMap::new();
    for line in dep.lines() {
        let Some((m, rest)) = line.split_once(':') else {
            continue;
        };
        let d = rest.split_whitespace().map(str::to_string).collect();
        deps.insert(norm(stem(m)), (m.to_string(), d));
    }
    let builtin: Vec<String> = builtin.lines().map(|l| norm(stem(l))).collect();
    let mut order: Vec<String> = Vec::new();
    fn visit(
        path: &str,
        deps: &HashMap<String, (String, Vec<String>)>,
        order: &mut Vec<String>,
        depth: usize,
    ) -> Result<()> {
        if depth > 32 {
            bail!("module dependency loop at {path}");
        }
        if order.iter().any(|p| p == path) {
            return Ok(());
        }
        if let Some((_, ds)) = deps.get(&norm(stem(path))) {
            for d in ds {
                visit(d, deps, order, depth + 1)?;
            }
        }
        order.push(path.to_string());
        Ok(())
    }
    for w in wanted {
        match deps.get(&norm(w)) {
            Some((path, _)) => visit(path, &deps, &mut order, 0)?,
            None if builtin.contains(&norm(w)) => {}
            None => bail!("module {w} is neither in modules.dep nor built in"),
        }
    }
    Ok(order)
}

/// What goes into one initramfs.
pub struct Spec<'a> {
    pub busybox: &'a Path,
    pub modules_dir: &'a Path,
    /// Module names to load, in any order (resolved with their deps).
    pub modules: &'a [&'a str],
    pub init: &'a str,
    /// Extra files: (path in the archive, host file).
    pub extra: Vec<(String, PathBuf)>,
}

/// Module load order (file stems) for the /init script.
pub fn module_order(modules_dir: &Path, wanted: &[&str]) -> Result<Vec<String>> {
    let dep = fs::read_to_string(modules_dir.join("modules.dep"))
        .with_context(|| format!("reading {}/modules.dep", modules_dir.display()))?;
    let builtin = fs::read_to_string(modules_dir.join("modules.builtin")).unwrap_or_default();
    resolve_modules(&dep, &builtin, wanted)
}

/// Builds (or reuses) the archive; returns its path in the cache.
pub fn build(spec: &Spec, cache: &Path, label: &str) -> Result<PathBuf> {
    let order = module_order(spec.modules_dir, spec.modules)?;
    let mut h = Sha256::new();
    h.update(b"vfio-trace initramfs v1\0");
    h.update(fs::read(spec.busybox)?);
    h.update(spec.init.as_bytes());
    for m in &order {
        h.update(m.as_bytes());
        h.update(fs::read(spec.modules_dir.join(m))?);
    }
    for (p, f) in &spec.extra {
        h.update(p.as_bytes());
        h.update(fs::read(f).with_context(|| format!("reading {}", f.display()))?);
    }
    let hash = super::debs::hex(&h.finalize());
    fs::create_dir_all(cache)?;
    let out = cache.join(format!("{label}-{}.cpio", &hash[..16]));
    if out.exists() {
        eprintln!("    initramfs: cached {}", out.display());
        return Ok(out);
    }
    let mut entries = vec![];
    for d in [
        "bin",
        "dev",
        "proc",
        "sys",
        "tmp",
        "run",
        "lab",
        "host",
        "mnt",
        "lib",
        "lib/modules",
        "sys/kernel",
    ] {
        entries.push(Entry::Dir(d.into()));
    }
    entries.push(Entry::CharDev {
        path: "dev/console".into(),
        major: 5,
        minor: 1,
    });
    entries.push(Entry::CharDev {
        path: "dev/null".into(),
        major: 1,
        minor: 3,
    });
    entries.push(Entry::File {
        path: "bin/busybox".into(),
        mode: 0o755,
        data: fs::read(spec.busybox)?,
    });
    entries.push(Entry::Symlink {
        path: "bin/sh".into(),
        target: "busybox".into(),
    });
    entries.push(Entry::File {
        path: "init".into(),
        mode: 0o755,
        data: spec.init.as_bytes().to_vec(),
    });
    for m in &order {
        let src = spec.modules_dir.join(m);
        let data = if m.ends_with(".xz") {
            let o = cmd("xz", ["-dc".as_ref(), src.as_os_str()])
                .output()
                .context("running xz")?;
            if !o.status.success() {
                bail!("xz -dc {} failed", src.display());
            }
            o.stdout
        } else {
            fs::read(&src)?
        };
        entries.push(Entry::File {
            path: format!("lib/modules/{}.ko", stem(m)),
            mode: 0o644,
            data,
        });
    }
    for (p, f) in &spec.extra {
        entries.push(Entry::File {
            path: p.clone(),
            mode: 0o755,
            data: fs::read(f)?,
        });
    }
    let tmp = out.with_extension("tmp");
    fs::write(&tmp, newc(&entries))?;
    fs::rename(&tmp, &out)?;
    prune(cache, label, &out);
    eprintln!(
        "    initramfs: built {} ({} modules)",
        out.display(),
        order.len()
    );
    Ok(out)
}

/// Keeps the cache small: older images of the same label beyond the
/// newest few are removed.
fn prune(cache: &Path, label: &str, keep: &Path) {
    let prefix = format!("{label}-");
    let Ok(rd) = fs::read_dir(cache) else { return };
    let mut old: Vec<(std::time::SystemTime, PathBuf)> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p != keep)
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with(&prefix) && n.ends_with(".cpio") && n.len() == prefix.len() + 21
            })
        })
        .filter_map(|p| Some((fs::metadata(&p).ok()?.modified().ok()?, p)))
        .collect();
    old.sort();
    let n = old.len().saturating_sub(3);
    for (_, p) in old.into_iter().take(n) {
        let _ = fs::remove_file(p);
    }
}

/// The module stems in load order, as /init's `insmod` lines expect.
pub fn stems(order: &[String]) -> Vec<String> {
    order.iter().map(|p| stem(p).to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEP: &str = "\
kernel/drivers/vfio/vfio.ko.xz:
kernel/drivers/vfio/vfio_iommu_type1.ko.xz: kernel/drivers/vfio/vfio.ko.xz
kernel/drivers/vfio/pci/vfio-pci-core.ko.xz: kernel/drivers/vfio/vfio.ko.xz kernel/virt/lib/irqbypass.ko.xz
kernel/drivers/vfio/pci/vfio-pci.ko.xz: kernel/drivers/vfio/pci/vfio-pci-core.ko.xz kernel/drivers/vfio/vfio.ko.xz kernel/virt/lib/irqbypass.ko.xz
kernel/virt/lib/irqbypass.ko.xz:
";

    #[test]
    fn modules_resolve_in_dependency_order() {
        let o = resolve_modules(
            DEP,
            "kernel/drivers/virtio/virtio_pci.ko\n",
            &["vfio_pci", "vfio_iommu_type1", "virtio_pci"],
        )
        .unwrap();
        let s = stems(&o);
        assert_eq!(
            s,
            [
                "vfio",
                "irqbypass",
                "vfio-pci-core",
                "vfio-pci",
                "vfio_iommu_type1"
            ]
        );
        assert!(resolve_modules(DEP, "", &["nope"]).is_err());
    }

    #[test]
    fn newc_layout() {
        let a = newc(&[Entry::File {
            path: "init".into(),
            mode: 0o755,
            data: b"hi".to_vec(),
        }]);
        assert_eq!(&a[..6], b"070701");
        // header 110 + "init\0" = 115 → padded to 116, data 2 → 120.
        assert_eq!(&a[110..114], b"init");
        assert_eq!(&a[116..118], b"hi");
        assert_eq!(&a[120..126], b"070701");
        assert!(a.windows(10).any(|w| w == b"TRAILER!!!"));
        assert_eq!(a.len() % 4, 0);
        // mode field of the file entry
        assert_eq!(&a[14..22], b"000081ed");
    }
}
