//! Which Debian kernel each lab VM level boots: the pinned list CI uses,
//! the names `--kernel` / `--guest-kernel` accept, and the selection the
//! current lab run made.
//!
//! `6.1`, `6.12`, `7.2` name a pinned exact ABI (reproducible: a new upload
//! to Debian cannot change what they boot); `newest` asks Debian unstable
//! for its newest kernel today; anything else is an exact Debian ABI
//! (`6.1.0-50`, `6.12.95+deb12`, `7.2.13+deb14`).

use std::sync::Mutex;

use anyhow::{bail, Result};

use super::{debs, Arch};

/// One pinned kernel: the series users name, its exact Debian ABI and the
/// suite it comes from (for messages; apt finds it by name).
#[derive(Debug, Clone, Copy)]
pub struct Pinned {
    pub series: &'static str,
    pub abi: &'static str,
    pub suite: &'static str,
}

/// The exact kernels CI boots (`cargo xtask test`, `lab matrix` without
/// `--kernels`). Oldest first; the last is the newest Debian kernel when
/// this list was last updated (checked with apt on 2026-12-03).
pub const PINNED: &[Pinned] = &[
    Pinned {
        series: "6.1",
        abi: "6.1.0-50",
        suite: "bookworm",
    },
    Pinned {
        series: "6.12",
        abi: "6.12.95+deb12",
        suite: "bookworm-backports",
    },
    Pinned {
        series: "7.2",
        abi: "7.2.13+deb14",
        suite: "unstable",
    },
];

/// What the lab boots without `--kernel` or `VFIO_TRACE_LAB_KERNEL`.
pub const DEFAULT: &str = "6.12";

/// The pinned entry for a series name or an exact pinned ABI.
pub fn pinned(name: &str) -> Option<&'static Pinned> {
    PINNED.iter().find(|p| p.series == name || p.abi == name)
}

/// Resolves a `--kernel` value to an exact Debian ABI for `arch`.
pub fn resolve(spec: &str, arch: Arch) -> Result<String> {
    let spec = spec.trim();
    if let Some(p) = pinned(spec) {
        return Ok(p.abi.to_string());
    }
    if spec == "newest" {
        let abi = debs::newest_unstable_abi(arch)?;
        let newest_pinned = PINNED.last().map_or("", |p| p.abi);
        match compare_abi(&abi, newest_pinned) {
            std::cmp::Ordering::Greater => eprintln!(
                "    kernel: newest in unstable is {abi}, newer than the newest pinned \
                 ({newest_pinned}, xtask/src/lab/kernels.rs)"
            ),
            _ => eprintln!("    kernel: newest in unstable is {abi} (pinned: {newest_pinned})"),
        }
        return Ok(abi);
    }
    check_abi(spec)?;
    Ok(spec.to_string())
}

/// An exact ABI looks like `6.1.0-50` or `6.12.95+deb12`: digits and dots
/// first, then only characters Debian uses in package names.
fn check_abi(abi: &str) -> Result<()> {
    let ok = abi.chars().next().is_some_and(|c| c.is_ascii_digit())
        && abi.contains('.')
        && abi
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | '~'));
    if !ok {
        bail!(
            "--kernel {abi:?}: use {}, newest, or an exact Debian ABI such as {}",
            PINNED
                .iter()
                .map(|p| p.series)
                .collect::<Vec<_>>()
                .join(", "),
            PINNED.iter().map(|p| p.abi).collect::<Vec<_>>().join(" / ")
        );
    }
    Ok(())
}

/// Orders ABIs by their numeric parts (`7.2.13+deb14` > `6.12.95+deb12`,
/// `6.1.0-57` > `6.1.0-50`).
pub fn compare_abi(a: &str, b: &str) -> std::cmp::Ordering {
    let nums = |s: &str| -> Vec<u64> {
        s.split(|c: char| !c.is_ascii_digit())
            .filter(|p| !p.is_empty())
            .filter_map(|p| p.parse().ok())
            .collect()
    };
    nums(a).cmp(&nums(b))
}

/// A VM level: the host runs VFIO on the emulated IOMMU; the guest is the
/// nested L2 (single-level scenarios have only a host).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Level {
    Host,
    Guest,
}

impl Level {
    /// The level `scenarios::prepare` names (`l2` is the nested guest).
    pub fn of(node: &str) -> Level {
        if node == "l2" {
            Level::Guest
        } else {
            Level::Host
        }
    }
}

/// The kernel names this run asked for (unresolved: `newest` is resolved
/// per architecture when a level needs it).
#[derive(Debug, Clone, Default)]
struct Selection {
    host: Option<String>,
    guest: Option<String>,
    resolved: Vec<(String, Arch, String)>,
}

static SELECTED: Mutex<Option<Selection>> = Mutex::new(None);

/// Records `--kernel` / `--guest-kernel` for this run (`None`: the
/// environment's `VFIO_TRACE_LAB_KERNEL`, else [`DEFAULT`]).
pub fn select(host: Option<&str>, guest: Option<&str>) {
    let mut s = SELECTED.lock().unwrap_or_else(|e| e.into_inner());
    *s = Some(Selection {
        host: host.map(str::to_string),
        guest: guest.map(str::to_string),
        resolved: vec![],
    });
}

/// The name asked for `level`: `--guest-kernel` falls back to `--kernel`,
/// which falls back to `VFIO_TRACE_LAB_KERNEL`, then [`DEFAULT`].
pub fn spec_for(level: Level) -> String {
    let s = SELECTED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .unwrap_or_default();
    let host = s
        .host
        .or_else(|| std::env::var("VFIO_TRACE_LAB_KERNEL").ok())
        .unwrap_or_else(|| DEFAULT.to_string());
    match level {
        Level::Host => host,
        Level::Guest => s.guest.unwrap_or(host),
    }
}

/// The exact ABI `level` boots on `arch` (resolved once per run).
pub fn abi_for(level: Level, arch: Arch) -> Result<String> {
    let spec = spec_for(level);
    {
        let g = SELECTED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(hit) = g.as_ref().and_then(|s| {
            s.resolved
                .iter()
                .find(|(n, a, _)| *n == spec && *a == arch)
                .map(|(.., abi)| abi.clone())
        }) {
            return Ok(hit);
        }
    }
    let abi = resolve(&spec, arch)?;
    let mut g = SELECTED.lock().unwrap_or_else(|e| e.into_inner());
    g.get_or_insert_with(Selection::default)
        .resolved
        .push((spec, arch, abi.clone()));
    Ok(abi)
}

/// The kernels this run resolved, as JSON: `{"host": {"spec", "abi"},
/// "guest": ...}` per architecture (the matrix reads `kernels.json`).
pub fn record_json() -> String {
    let g = SELECTED.lock().unwrap_or_else(|e| e.into_inner());
    let resolved = g.as_ref().map(|s| s.resolved.clone()).unwrap_or_default();
    drop(g);
    let mut levels = serde_json::Map::new();
    for level in [Level::Host, Level::Guest] {
        let spec = spec_for(level);
        let abis: serde_json::Map<String, serde_json::Value> = resolved
            .iter()
            .filter(|(n, ..)| *n == spec)
            .map(|(_, a, abi)| (a.deb().to_string(), abi.clone().into()))
            .collect();
        let name = match level {
            Level::Host => "host",
            Level::Guest => "guest",
        };
        levels.insert(
            name.into(),
            serde_json::json!({ "spec": spec, "abi": abis }),
        );
    }
    serde_json::to_string_pretty(&serde_json::Value::Object(levels)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering;

    #[test]
    fn abis_order_by_their_numbers() {
        assert_eq!(
            compare_abi("7.2.13+deb14", "6.12.95+deb12"),
            Ordering::Greater
        );
        assert_eq!(compare_abi("6.1.0-57", "6.1.0-50"), Ordering::Greater);
        assert_eq!(
            compare_abi("6.12.95+deb12", "6.12.118+deb12"),
            Ordering::Less
        );
        assert_eq!(compare_abi("7.2.13+deb14", "7.2.13+deb14"), Ordering::Equal);
    }

    #[test]
    fn pinned_names_resolve_without_apt() {
        assert_eq!(resolve("6.1", Arch::X86_64).unwrap(), "6.1.0-50");
        assert_eq!(resolve("6.12", Arch::Arm64).unwrap(), "6.12.95+deb12");
        assert_eq!(
            resolve("7.2.13+deb14", Arch::X86_64).unwrap(),
            "7.2.13+deb14"
        );
        assert_eq!(resolve("6.1.0-57", Arch::X86_64).unwrap(), "6.1.0-57");
        assert!(resolve("latest", Arch::X86_64).is_err());
        assert!(resolve("6.12; rm -rf /", Arch::X86_64).is_err());
    }

    #[test]
    fn pinned_list_is_oldest_first_and_has_the_default() {
        for w in PINNED.windows(2) {
            assert_eq!(compare_abi(w[0].abi, w[1].abi), Ordering::Less);
        }
        assert!(pinned(DEFAULT).is_some());
    }
}
