//! The attach table: every probe vfio-trace knows, where it attaches, what it
//! yields and whether the tool is useless without it. A probe that cannot
//! attach is reported with its reason and skipped, unless it is required or
//! the user asked for it by name.

use tracer_common::probe::{self, ProbeId};

/// Where a program attaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attach {
    Tracepoint {
        category: &'static str,
        name: &'static str,
    },
}

impl Attach {
    /// `tracepoint:syscalls:sys_enter_ioctl` style, as shown to users.
    pub fn describe(&self) -> String {
        match self {
            Attach::Tracepoint { category, name } => format!("tracepoint:{category}:{name}"),
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct ProbeSpec {
    /// User-facing name (`--probe NAME`).
    pub name: &'static str,
    /// Program symbol in the eBPF object.
    pub program: &'static str,
    pub id: ProbeId,
    pub attach: Attach,
    /// Event kinds it contributes to.
    pub yields: &'static [&'static str],
    /// Without it the tool cannot do its job: failing to attach is fatal.
    pub required: bool,
}

const IOCTL_KINDS: &[&str] = &[
    "vfio_map_dma",
    "vfio_unmap_dma",
    "vfio_iommu_info",
    "vfio_set_iommu",
    "vfio_set_irqs",
    "kvm_memslot",
    "ioas_map",
    "ioas_unmap",
];

pub const PROBES: &[ProbeSpec] = &[
    ProbeSpec {
        name: "ioctl_enter",
        program: "sys_enter_ioctl",
        id: probe::SYS_ENTER_IOCTL,
        attach: Attach::Tracepoint {
            category: "syscalls",
            name: "sys_enter_ioctl",
        },
        yields: IOCTL_KINDS,
        required: true,
    },
    ProbeSpec {
        name: "ioctl_exit",
        program: "sys_exit_ioctl",
        id: probe::SYS_EXIT_IOCTL,
        attach: Attach::Tracepoint {
            category: "syscalls",
            name: "sys_exit_ioctl",
        },
        yields: IOCTL_KINDS,
        required: true,
    },
];

pub fn by_name(name: &str) -> Option<&'static ProbeSpec> {
    PROBES.iter().find(|p| p.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_programs_and_ids_are_unique() {
        for (i, a) in PROBES.iter().enumerate() {
            for b in &PROBES[i + 1..] {
                assert_ne!(a.name, b.name);
                assert_ne!(a.program, b.program);
                assert_ne!(a.id, b.id);
            }
            assert!(u32::from(a.id) < probe::MAX_PROBES);
        }
    }
}
