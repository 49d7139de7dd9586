use std::fmt;

use serde::{Deserialize, Serialize};

use super::{handle, sample, write_errno, Category, Kind};
use crate::event::{fd_handle, Event};
use crate::tracefile::codec::fields::{FieldReader, FieldWriter};
use crate::tracefile::varint::DecodeResult;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvmMemslot {
    /// [`fd_handle`] of the VM fd.
    pub vm: u64,
    /// Slot id; bits 16.. are the address space.
    pub slot: u32,
    pub gpa: u64,
    /// 0 deletes the slot.
    pub size: u64,
    pub hva: u64,
    /// KVM_MEM_{LOG_DIRTY_PAGES 1, READONLY 2, GUEST_MEMFD 4}.
    pub flags: u32,
    pub errno: i32,
}

impl fmt::Display for KvmMemslot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "vm={} slot={:#x} gpa={:#x} size={:#x} hva={:#x} flags={:#x}",
            handle(self.vm),
            self.slot,
            self.gpa,
            self.size,
            self.hva,
            self.flags
        )?;
        write_errno(f, self.errno)
    }
}

impl Kind for KvmMemslot {
    const CATEGORY: Category = Category::Memslot;
    const SUBSYSTEM: &'static str = "kvm";

    field_codec!(KvmMemslot {
        vm: d(0),
        slot: v32,
        gpa: v,
        size: v,
        hva: v,
        flags: v32,
        errno: z,
    });

    fn errno(&self) -> i32 {
        self.errno
    }

    fn track(&self, _pid: u32) -> String {
        format!("vm {}", handle(self.vm))
    }

    fn samples() -> Vec<Event> {
        vec![sample::qemu().at(
            800,
            KvmMemslot {
                vm: fd_handle(sample::QEMU_PID, 12),
                slot: 0x1_0002,
                gpa: 0x1_0000_0000,
                size: 0,
                hva: 0x7f00_0000_0000,
                flags: 1,
                errno: -1,
            },
        )]
    }

    #[cfg(any(test, feature = "encode"))]
    fn to_wire(&self, ev: &Event, out: &mut Vec<u8>) -> Option<()> {
        use crate::decode::encode::{ioctl, push_ioctl, Le};
        use tracer_common::ioctl::KVM_SET_USER_MEMORY_REGION;
        let d = Le::default()
            .u32(self.slot)
            .u32(self.flags)
            .u64(self.gpa)
            .u64(self.size)
            .u64(self.hva);
        let cmd = KVM_SET_USER_MEMORY_REGION;
        push_ioctl(&ioctl(ev, self.vm, cmd, 0, self.errno, &d.0, &[])?, out);
        Some(())
    }
}
