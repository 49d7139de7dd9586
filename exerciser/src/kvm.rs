//! A VMM's guest RAM through KVM: a VM and one memory slot, enough for
//! vfio-trace to know the VM's GPA→HVA map (no vCPU ever runs).

use anyhow::anyhow;
use serde_json::json;

use crate::session::{errno_str, Session, StepResult};

pub const KVM_CREATE_VM: u32 = 0xAE01;
pub const KVM_SET_USER_MEMORY_REGION: u32 = 0x4020_AE46;

/// `struct kvm_userspace_memory_region`.
#[repr(C)]
struct MemoryRegion {
    slot: u32,
    flags: u32,
    guest_phys_addr: u64,
    memory_size: u64,
    userspace_addr: u64,
}

pub fn available() -> bool {
    std::path::Path::new("/dev/kvm").exists()
}

/// VT005: the process that drives edu through VFIO also runs a VM whose
/// RAM starts at GPA 0 (as some arm64 VMMs place it), so GPAs
/// 0x8000000-0x80fffff lie in the host's software-MSI window: a guest
/// buffer there can never be DMA-mapped at IOVA = GPA (VFIO refuses it,
/// the doorbell owns it). No MAP_DMA is attempted: the memslot is the cause.
pub fn ram_in_sw_msi_window(s: &mut Session, step: &str) -> StepResult {
    s.ensure_iommu()?;
    let (w0, w1) = crate::steps::msi_window(s)?;
    const SIZE: u64 = 256 << 20;
    let kvm = s.open(step, "/dev/kvm")?;
    let t = s.ioctl_val(step, kvm, KVM_CREATE_VM, 0);
    if !t.ok() {
        // SAFETY: our own fd.
        unsafe { libc::close(kvm) };
        return Err(anyhow!("KVM_CREATE_VM: {}", errno_str(&t)));
    }
    let vm = t.ret as i32;
    // SAFETY: an anonymous private mapping, never touched (no memory used).
    let hva = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            SIZE as usize,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    let res = if hva == libc::MAP_FAILED {
        Err(anyhow!("mmap of 256 MiB guest RAM failed"))
    } else {
        let mut r = MemoryRegion {
            slot: 0,
            flags: 0,
            guest_phys_addr: 0,
            memory_size: SIZE,
            userspace_addr: hva as u64,
        };
        let args = json!({ "slot": 0, "guest_phys_addr": 0, "memory_size": SIZE, "userspace_addr": hva as u64 });
        let t = s.ioctl_ptr(step, vm, KVM_SET_USER_MEMORY_REGION, &mut r, args, |_| {
            serde_json::Value::Null
        });
        if t.ok() {
            Ok(format!(
                "VM RAM at GPA 0-{:#x} overlaps the SW-MSI window {w0:#x}-{w1:#x}",
                SIZE - 1
            ))
        } else {
            Err(anyhow!("KVM_SET_USER_MEMORY_REGION: {}", errno_str(&t)))
        }
    };
    // SAFETY: our own mapping and fds.
    unsafe {
        if hva != libc::MAP_FAILED {
            libc::munmap(hva, SIZE as usize);
        }
        libc::close(vm);
        libc::close(kvm);
    }
    res
}
