//! The Events view's filter: `node=NAME dev=DEVICE kind=NAME pid=PID
//! iova=START-END` (any subset, space separated), plus the `/` search text.

use std::fmt;

use tracer_core::event::{Device, Event, NodeInfo};

use super::event_info;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// Node name (exact).
    pub node: Option<String>,
    pub device: Option<Device>,
    /// A kind name, or part of one (`map` matches every *map* kind).
    pub kind: Option<String>,
    pub pid: Option<u32>,
    /// Keeps events whose address range overlaps `[start, last]`.
    pub iova: Option<(u64, u64)>,
    /// `/` search: case-insensitive substring of the event's line.
    pub search: Option<String>,
}

#[derive(Debug, PartialEq, Eq)]
pub struct FilterError(pub String);

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn parse_u64(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// `START-END` (inclusive), `START+SIZE`, or one address.
pub fn parse_range(s: &str) -> Option<(u64, u64)> {
    if let Some((a, b)) = s.split_once('-') {
        let (a, b) = (parse_u64(a)?, parse_u64(b)?);
        return (a <= b).then_some((a, b));
    }
    if let Some((a, n)) = s.split_once('+') {
        let (a, n) = (parse_u64(a)?, parse_u64(n)?);
        return (n > 0).then(|| (a, a.saturating_add(n - 1)));
    }
    parse_u64(s).map(|a| (a, a))
}

impl Filter {
    /// Parses the filter prompt; keeps the current search text.
    pub fn parse(s: &str, search: Option<String>) -> Result<Filter, FilterError> {
        let mut f = Filter {
            search,
            ..Filter::default()
        };
        for word in s.split_whitespace() {
            let (k, v) = word
                .split_once('=')
                .ok_or_else(|| FilterError(format!("{word:?}: expected key=value")))?;
            let bad = || FilterError(format!("{k}: bad value {v:?}"));
            match k {
                "node" => f.node = Some(v.to_string()),
                "dev" | "device" => f.device = Some(Device::parse(v).ok_or_else(bad)?),
                "kind" => f.kind = Some(v.to_ascii_lowercase()),
                "pid" => f.pid = Some(v.parse().map_err(|_| bad())?),
                "iova" | "addr" => f.iova = Some(parse_range(v).ok_or_else(bad)?),
                _ => {
                    return Err(FilterError(format!(
                        "unknown key {k:?} (node, dev, kind, pid, iova)"
                    )))
                }
            }
        }
        Ok(f)
    }

    /// Is any part (besides the search) set?
    pub fn is_empty(&self) -> bool {
        self.node.is_none()
            && self.device.is_none()
            && self.kind.is_none()
            && self.pid.is_none()
            && self.iova.is_none()
            && self.search.is_none()
    }

    /// Checks everything but the search text.
    pub fn matches(&self, ev: &Event, nodes: &[NodeInfo]) -> bool {
        if let Some(n) = &self.node {
            if tracer_core::tracefile::node_name(nodes, ev.node) != n.as_str() {
                return false;
            }
        }
        if let Some(d) = self.device {
            if event_info::device(&ev.kind) != Some(d) {
                return false;
            }
        }
        if let Some(k) = &self.kind {
            if !event_info::kind_name(&ev.kind).contains(k.as_str()) {
                return false;
            }
        }
        if let Some(p) = self.pid {
            if ev.pid != p {
                return false;
            }
        }
        if let Some((s, l)) = self.iova {
            match event_info::iova_range(&ev.kind) {
                Some((a, b)) if a <= l && s <= b => {}
                _ => return false,
            }
        }
        true
    }
}

impl fmt::Display for Filter {
    /// The prompt form, so the user can edit the current filter.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(n) = &self.node {
            parts.push(format!("node={n}"));
        }
        if let Some(d) = self.device {
            parts.push(format!("dev={d}"));
        }
        if let Some(k) = &self.kind {
            parts.push(format!("kind={k}"));
        }
        if let Some(p) = self.pid {
            parts.push(format!("pid={p}"));
        }
        if let Some((s, l)) = self.iova {
            parts.push(format!("iova={s:#x}-{l:#x}"));
        }
        f.write_str(&parts.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use tracer_core::event::{Comm, EventKind, VfioMapDma};

    use super::*;

    fn map(iova: u64, size: u64, pid: u32) -> Event {
        Event {
            ts_ns: 1,
            node: 0,
            pid,
            tid: pid,
            comm: Comm::new("qemu"),
            kind: EventKind::VfioMapDma(VfioMapDma {
                container: 1,
                iova,
                vaddr: 0,
                size,
                flags: 3,
                errno: 0,
            }),
        }
    }

    #[test]
    fn parses_and_prints_every_key() {
        let f = Filter::parse(
            "node=host dev=00:02.0 kind=MAP pid=7 iova=0x1000+0x1000",
            None,
        )
        .unwrap();
        assert_eq!(f.node.as_deref(), Some("host"));
        assert_eq!(f.device, Device::parse("0000:00:02.0"));
        assert_eq!(f.kind.as_deref(), Some("map"));
        assert_eq!(f.pid, Some(7));
        assert_eq!(f.iova, Some((0x1000, 0x1fff)));
        assert_eq!(
            f.to_string(),
            "node=host dev=0000:00:02.0 kind=map pid=7 iova=0x1000-0x1fff"
        );
        assert_eq!(Filter::parse(&f.to_string(), None).unwrap(), f);
    }

    #[test]
    fn rejects_bad_input_with_a_reason() {
        assert!(Filter::parse("pid=x", None).unwrap_err().0.contains("pid"));
        assert!(Filter::parse("color=red", None)
            .unwrap_err()
            .0
            .contains("unknown key"));
        assert!(Filter::parse("iova=0x2000-0x1000", None).is_err());
        assert!(Filter::parse("nonsense", None).is_err());
    }

    #[test]
    fn matches_pid_kind_and_overlapping_iova() {
        let f = Filter::parse("kind=map iova=0x1800-0x1900 pid=5", None).unwrap();
        assert!(f.matches(&map(0x1000, 0x1000, 5), &[]));
        assert!(!f.matches(&map(0x1000, 0x1000, 6), &[]));
        assert!(!f.matches(&map(0x2000, 0x1000, 5), &[]));
        let node = Filter::parse("node=node0", None).unwrap();
        assert!(node.matches(&map(0, 1, 1), &[]));
    }
}
