//! Whether a scenario can run on a kernel, judged from the kernel's own
//! files: every module a VM level loads must be in its modules.dep or
//! modules.builtin; when one is not, the kernel's build configuration says
//! why (`CONFIG_VIRTIO_IOMMU is not set in config-6.1.0-50-amd64`). No table
//! of kernels and scenarios: a new kernel is judged by what it ships.

use std::{fmt, fs, path::Path};

use super::debs::Kernel;

/// A scenario needs what this kernel does not have.
#[derive(Debug, Clone)]
pub struct NotApplicable {
    pub release: String,
    /// One line per missing piece, with the kernel's evidence.
    pub evidence: Vec<String>,
}

impl fmt::Display for NotApplicable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "does not apply to kernel {}: {}",
            self.release,
            self.evidence.join("; ")
        )
    }
}

impl std::error::Error for NotApplicable {}

/// The Kconfig symbol of a module, where it is not CONFIG_<NAME>.
const SYMBOL_OF: &[(&str, &str)] = &[
    ("9p", "CONFIG_9P_FS"),
    ("9pnet", "CONFIG_NET_9P"),
    ("9pnet_virtio", "CONFIG_NET_9P_VIRTIO"),
    ("netfs", "CONFIG_NETFS_SUPPORT"),
    ("ccp", "CONFIG_CRYPTO_DEV_CCP_DD"),
    ("virtio_iommu", "CONFIG_VIRTIO_IOMMU"),
];

fn norm(m: &str) -> String {
    m.replace('-', "_")
}

/// The Kconfig symbol that builds module `m`.
pub fn symbol_of(m: &str) -> String {
    let n = norm(m);
    SYMBOL_OF
        .iter()
        .find(|(k, _)| *k == n)
        .map(|(_, s)| s.to_string())
        .unwrap_or_else(|| format!("CONFIG_{}", n.to_ascii_uppercase()))
}

/// The config file's name as evidence: `config-6.1.0-50-amd64` (classic
/// packaging) or `7.2.13+deb14-amd64/config` (7.x).
fn config_name(k: &Kernel) -> String {
    let f = k
        .config
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    if f == "config" {
        format!("{}/config", k.release)
    } else {
        f
    }
}

/// What the config says about `sym`, as one evidence line.
pub fn config_evidence(config: &str, sym: &str, file: &str) -> String {
    let set = format!("{sym}=");
    let unset = format!("# {sym} is not set");
    match config
        .lines()
        .find(|l| l.starts_with(&set) || l.trim() == unset)
    {
        Some(l) if l.starts_with('#') => format!("{sym} is not set in {file}"),
        Some(l) => format!("{l} in {file}, but the module file is missing"),
        None => format!("{sym} does not appear in {file}"),
    }
}

/// Checks `modules` against kernel `k` (names as the scenarios list them).
pub fn check(k: &Kernel, modules: &[&str]) -> Result<(), NotApplicable> {
    let missing = missing_modules(&k.modules, modules);
    if missing.is_empty() {
        return Ok(());
    }
    let config = fs::read_to_string(&k.config).unwrap_or_default();
    let file = config_name(k);
    let evidence = missing
        .iter()
        .map(|m| {
            format!(
                "module {m}: {}",
                config_evidence(&config, &symbol_of(m), &file)
            )
        })
        .collect();
    Err(NotApplicable {
        release: k.release.clone(),
        evidence,
    })
}

/// Modules of `wanted` in neither modules.dep nor modules.builtin.
fn missing_modules(dir: &Path, wanted: &[&str]) -> Vec<String> {
    let dep = fs::read_to_string(dir.join("modules.dep")).unwrap_or_default();
    let builtin = fs::read_to_string(dir.join("modules.builtin")).unwrap_or_default();
    let stem = |l: &str| -> String {
        let path = l.split(':').next().unwrap_or("");
        let f = path.rsplit('/').next().unwrap_or(path);
        norm(f.split(".ko").next().unwrap_or(f))
    };
    let have: std::collections::HashSet<String> =
        dep.lines().chain(builtin.lines()).map(stem).collect();
    wanted
        .iter()
        .filter(|w| !have.contains(&norm(w)))
        .map(|w| w.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evidence_quotes_the_config() {
        let cfg = "CONFIG_VFIO=m\n# CONFIG_VIRTIO_IOMMU is not set\n";
        assert_eq!(
            config_evidence(cfg, "CONFIG_VIRTIO_IOMMU", "config-6.1.0-50-amd64"),
            "CONFIG_VIRTIO_IOMMU is not set in config-6.1.0-50-amd64"
        );
        assert_eq!(
            config_evidence(cfg, "CONFIG_VFIO", "c"),
            "CONFIG_VFIO=m in c, but the module file is missing"
        );
        assert_eq!(
            config_evidence(cfg, "CONFIG_KVM_AMD", "c"),
            "CONFIG_KVM_AMD does not appear in c"
        );
        assert_eq!(symbol_of("virtio-iommu"), "CONFIG_VIRTIO_IOMMU");
        assert_eq!(symbol_of("vfio_iommu_type1"), "CONFIG_VFIO_IOMMU_TYPE1");
        assert_eq!(symbol_of("9p"), "CONFIG_9P_FS");
    }

    #[test]
    fn a_missing_module_is_found_and_builtins_count() {
        let dir = std::env::temp_dir().join(format!("vfio-trace-applies-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join("modules.dep"),
            "kernel/drivers/vfio/vfio.ko.xz:\nkernel/drivers/vfio/pci/vfio-pci.ko.xz: kernel/drivers/vfio/vfio.ko.xz\n",
        )
        .unwrap();
        fs::write(
            dir.join("modules.builtin"),
            "kernel/drivers/virtio/virtio_pci.ko\n",
        )
        .unwrap();
        let m = missing_modules(&dir, &["vfio_pci", "virtio_pci", "virtio_iommu"]);
        assert_eq!(m, vec!["virtio_iommu".to_string()]);
        fs::remove_dir_all(&dir).unwrap();
    }
}
