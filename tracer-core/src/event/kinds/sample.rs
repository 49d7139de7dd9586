//! The shared cast of the kinds' sample events (`Kind::samples`): one QEMU
//! process with a VFIO container and a device, its vCPU threads, and the
//! tool itself. `synth::all_kinds` lays the samples out as one timeline.

use crate::event::build::Task;
use crate::event::{fd_handle, Device};

pub const QEMU_PID: u32 = 4242;

/// QEMU's main thread on the host.
pub fn qemu() -> Task {
    Task::new(0, QEMU_PID, QEMU_PID, "qemu-system-x86")
}

/// vCPU thread `n` of QEMU.
pub fn vcpu(n: u32) -> Task {
    Task::new(0, QEMU_PID, QEMU_PID + 1 + n, &format!("CPU {n}/KVM"))
}

/// The tool itself on the host (health events, sysfs snapshots).
pub fn tool() -> Task {
    Task::new(0, 0, 0, "")
}

/// QEMU's VFIO container.
pub fn container() -> u64 {
    fd_handle(QEMU_PID, 17)
}

/// The passed-through device.
pub fn dev() -> Device {
    Device::Pci {
        seg: 0,
        bus: 1,
        dev: 0,
        func: 0,
    }
}

/// The VFIO domain's `struct iommu_domain`.
pub const DOMAIN: u64 = 0xffff_8880_0123_4000;
