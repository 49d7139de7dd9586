//! The VFIO objects the steps work on (container, groups, devices, DMA
//! buffers) and journaled wrappers for every system call made on them.

use anyhow::{anyhow, Context, Result};
use std::{ffi::CString, os::raw::c_void};

use serde_json::{json, Value};

use crate::{
    journal::{hex, timed, Journal, Timed},
    vfio::{self, *},
};

pub type StepResult = Result<String>;

/// A PCI function bound to vfio-pci.
pub struct Device {
    pub bdf: String,
    pub group: u32,
    pub fd: i32,
    pub bar0_offset: u64,
    pub bar0_size: u64,
    pub config_offset: u64,
}

/// An anonymous buffer and the IOVA it is (to be) mapped at.
pub struct DmaBuf {
    pub ptr: *mut u8,
    pub len: usize,
    pub iova: u64,
    pub mapped: bool,
}

impl DmaBuf {
    pub fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: ptr/len come from a successful mmap owned by self.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

pub struct Session {
    pub j: Journal,
    pub edu_bdf: Option<String>,
    pub e1000e_bdf: Option<String>,
    pub container: i32,
    pub groups: Vec<(u32, i32)>,
    pub iommu_set: bool,
    /// The type1 flavour SET_IOMMU asks for (VFIO_TYPE1v2_IOMMU unless a
    /// step wants the v1 semantics).
    pub iommu_type: u64,
    pub iova_ranges: Vec<(u64, u64)>,
    pub edu: Option<Device>,
    pub e1000e: Option<Device>,
    pub bufs: Vec<DmaBuf>,
}

pub fn group_of(bdf: &str) -> Result<u32> {
    let link = std::fs::read_link(format!("/sys/bus/pci/devices/{bdf}/iommu_group"))
        .map_err(|e| anyhow!("{bdf} has no IOMMU group ({e}); is it bound to vfio-pci?"))?;
    link.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("odd iommu_group link {}", link.display()))
}

impl Session {
    pub fn new(j: Journal, edu_bdf: Option<String>, e1000e_bdf: Option<String>) -> Self {
        Session {
            j,
            edu_bdf,
            e1000e_bdf,
            container: -1,
            groups: Vec::new(),
            iommu_set: false,
            iommu_type: vfio::VFIO_TYPE1V2_IOMMU,
            iova_ranges: Vec::new(),
            edu: None,
            e1000e: None,
            bufs: Vec::new(),
        }
    }

    pub fn open(&mut self, step: &str, path: &str) -> Result<i32> {
        let c = CString::new(path)?;
        // SAFETY: valid NUL-terminated path.
        let t = timed(|| unsafe { libc::open(c.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) } as i64);
        self.j.call(
            step,
            "open",
            None,
            -1,
            json!({ "path": path }),
            &t,
            Value::Null,
        );
        if t.ok() {
            Ok(t.ret as i32)
        } else {
            Err(anyhow!("open {path}: {}", errno_str(&t)))
        }
    }

    /// An ioctl whose argument is a plain value (or 0).
    pub fn ioctl_val(&mut self, step: &str, fd: i32, cmd: u32, val: u64) -> Timed {
        // SAFETY: these ioctls take an integer argument, not a pointer.
        let t = timed(|| unsafe { libc::ioctl(fd, cmd as _, val as libc::c_ulong) } as i64);
        self.j.call(
            step,
            "ioctl",
            Some((vfio::ioctl_name(cmd), cmd)),
            fd,
            json!({ "value": val }),
            &t,
            Value::Null,
        );
        t
    }

    /// An ioctl on a struct; `out` renders what the kernel wrote back.
    pub fn ioctl_ptr<T>(
        &mut self,
        step: &str,
        fd: i32,
        cmd: u32,
        arg: &mut T,
        args: Value,
        out: impl FnOnce(&T) -> Value,
    ) -> Timed {
        let p = arg as *mut T as *mut c_void;
        // SAFETY: `arg` is a live, correctly sized repr(C) struct for `cmd`.
        let t = timed(|| unsafe { libc::ioctl(fd, cmd as _, p) } as i64);
        let o = if t.ok() { out(arg) } else { Value::Null };
        self.j.call(
            step,
            "ioctl",
            Some((vfio::ioctl_name(cmd), cmd)),
            fd,
            args,
            &t,
            o,
        );
        t
    }

    /// An ioctl on a byte buffer (variable-length structs).
    pub fn ioctl_buf(
        &mut self,
        step: &str,
        fd: i32,
        cmd: u32,
        buf: &mut [u8],
        args: Value,
        out: impl FnOnce(&[u8]) -> Value,
    ) -> Timed {
        let p = buf.as_mut_ptr() as *mut c_void;
        // SAFETY: `buf` holds argsz bytes as the ioctl expects.
        let t = timed(|| unsafe { libc::ioctl(fd, cmd as _, p) } as i64);
        let o = if t.ok() { out(buf) } else { Value::Null };
        self.j.call(
            step,
            "ioctl",
            Some((vfio::ioctl_name(cmd), cmd)),
            fd,
            args,
            &t,
            o,
        );
        t
    }

    pub fn map_dma(&mut self, step: &str, vaddr: u64, iova: u64, size: u64) -> Timed {
        let mut m = DmaMap {
            argsz: std::mem::size_of::<DmaMap>() as u32,
            flags: VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
            vaddr,
            iova,
            size,
        };
        let args = json!({
            "argsz": m.argsz, "flags": m.flags,
            "vaddr": vaddr, "iova": iova, "size": size,
            "vaddr_hex": hex(vaddr), "iova_hex": hex(iova), "size_hex": hex(size),
        });
        let fd = self.container;
        self.ioctl_ptr(step, fd, VFIO_IOMMU_MAP_DMA, &mut m, args, |_| Value::Null)
    }

    /// Returns the call and the size the kernel wrote back (bytes unmapped).
    pub fn unmap_dma(&mut self, step: &str, iova: u64, size: u64) -> (Timed, u64) {
        let mut u = DmaUnmap {
            argsz: std::mem::size_of::<DmaUnmap>() as u32,
            flags: 0,
            iova,
            size,
        };
        let args = json!({
            "argsz": u.argsz, "flags": u.flags, "iova": iova, "size": size,
            "iova_hex": hex(iova), "size_hex": hex(size),
        });
        let fd = self.container;
        let t = self.ioctl_ptr(
            step,
            fd,
            VFIO_IOMMU_UNMAP_DMA,
            &mut u,
            args,
            |u| json!({ "size": u.size, "size_hex": hex(u.size) }),
        );
        (t, u.size)
    }

    pub fn alloc_buf(&mut self, len: usize, iova: u64) -> Result<usize> {
        // SAFETY: anonymous private mapping, checked for MAP_FAILED.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(anyhow!(
                "mmap {len} bytes: {}",
                std::io::Error::last_os_error()
            ));
        }
        self.bufs.push(DmaBuf {
            ptr: p as *mut u8,
            len,
            iova,
            mapped: false,
        });
        Ok(self.bufs.len() - 1)
    }

    /// pread/pwrite on a device region, journaled (`log` false for polls).
    #[expect(clippy::too_many_arguments, reason = "one flat journaled call")]
    pub fn region_rw(
        &mut self,
        step: &str,
        fd: i32,
        region_off: u64,
        off: u64,
        data: &mut [u8],
        write: bool,
        log: bool,
    ) -> Result<()> {
        let pos = (region_off + off) as libc::off_t;
        let p = data.as_mut_ptr() as *mut c_void;
        let n = data.len();
        // SAFETY: `data` is valid for n bytes.
        let t = timed(|| unsafe {
            if write {
                libc::pwrite(fd, p, n, pos) as i64
            } else {
                libc::pread(fd, p, n, pos) as i64
            }
        });
        if log || !t.ok() {
            let value = match n {
                1 => data[0] as u64,
                2 => u16::from_le_bytes([data[0], data[1]]) as u64,
                4 => u32::from_le_bytes(data[..4].try_into().unwrap()) as u64,
                _ => 0,
            };
            self.j.call(
                step,
                if write { "pwrite" } else { "pread" },
                None,
                fd,
                json!({ "offset": off, "offset_hex": hex(off), "len": n,
                        "value": if write { json!(value) } else { Value::Null } }),
                &t,
                if write {
                    Value::Null
                } else {
                    json!({ "value": value })
                },
            );
        }
        if t.ret == n as i64 {
            Ok(())
        } else {
            Err(anyhow!(
                "{} at {off:#x}: {}",
                if write { "pwrite" } else { "pread" },
                errno_str(&t)
            ))
        }
    }

    pub fn eventfd(&mut self, step: &str) -> Result<i32> {
        // SAFETY: plain syscall.
        let t =
            timed(|| unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) } as i64);
        self.j
            .call(step, "eventfd", None, -1, json!({}), &t, Value::Null);
        if t.ok() {
            Ok(t.ret as i32)
        } else {
            Err(anyhow!("eventfd: {}", errno_str(&t)))
        }
    }

    /// Waits up to `ms` for the eventfd and reads its counter (0: none).
    pub fn wait_eventfd(&mut self, step: &str, fd: i32, ms: i32) -> u64 {
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut pfd, 1, ms) };
        let mut v = 0u64;
        let p = &mut v as *mut u64 as *mut c_void;
        // SAFETY: reads 8 bytes into v.
        let t = timed(|| unsafe { libc::read(fd, p, 8) } as i64);
        let got = if t.ret == 8 { v } else { 0 };
        self.j.call(
            step,
            "read",
            None,
            fd,
            json!({ "len": 8, "eventfd": true, "timeout_ms": ms }),
            &t,
            json!({ "count": got }),
        );
        got
    }

    pub fn set_irqs(&mut self, step: &str, dev_fd: i32, index: u32, fds: &[i32]) -> Timed {
        let b = vfio::irq_set(index, 0, fds);
        self.set_irqs_buf(step, dev_fd, b)
    }

    /// Binds `n` fresh eventfds to vectors 0..n of IRQ `index`, runs `body`
    /// with them, then disables the index and closes them (on every path).
    /// The body's error is returned first, then the disable's.
    pub fn with_irqs<T>(
        &mut self,
        step: &str,
        dev_fd: i32,
        index: u32,
        n: usize,
        body: impl FnOnce(&mut Session, &[i32]) -> Result<T>,
    ) -> Result<T> {
        let name = if index == VFIO_PCI_MSIX_IRQ_INDEX {
            "MSI-X"
        } else {
            "MSI"
        };
        let mut fds = Vec::with_capacity(n);
        let close = |fds: &[i32]| {
            for &fd in fds {
                // SAFETY: closing our own eventfds.
                unsafe { libc::close(fd) };
            }
        };
        for _ in 0..n {
            match self.eventfd(step) {
                Ok(fd) => fds.push(fd),
                Err(e) => {
                    close(&fds);
                    return Err(e);
                }
            }
        }
        let t = self.set_irqs(step, dev_fd, index, &fds);
        if !t.ok() {
            close(&fds);
            return Err(anyhow!("SET_IRQS {name} enable: {}", errno_str(&t)));
        }
        let res = body(self, &fds);
        let t = self.set_irqs(step, dev_fd, index, &[]);
        close(&fds);
        let out = res?;
        if !t.ok() {
            return Err(anyhow!("SET_IRQS {name} disable: {}", errno_str(&t)));
        }
        Ok(out)
    }

    /// SET_IRQS with explicit flags, start and count (`fds` may be empty).
    pub fn set_irqs_raw(
        &mut self,
        step: &str,
        dev_fd: i32,
        index: u32,
        (flags, start, count): (u32, u32, u32),
        fds: &[i32],
    ) -> Timed {
        let b = vfio::irq_set_raw(flags, index, start, count, fds);
        self.set_irqs_buf(step, dev_fd, b)
    }

    /// A loopback trigger of one vector (DATA_NONE | ACTION_TRIGGER, count
    /// 1): VFIO signals the vector's eventfd, if it has one.
    pub fn loopback_trigger(
        &mut self,
        step: &str,
        dev_fd: i32,
        index: u32,
        vector: u32,
    ) -> Result<()> {
        let t = self.set_irqs_raw(
            step,
            dev_fd,
            index,
            (
                vfio::VFIO_IRQ_SET_DATA_NONE | vfio::VFIO_IRQ_SET_ACTION_TRIGGER,
                vector,
                1,
            ),
            &[],
        );
        if !t.ok() {
            return Err(anyhow!("SET_IRQS DATA_NONE trigger: {}", errno_str(&t)));
        }
        Ok(())
    }

    fn set_irqs_buf(&mut self, step: &str, dev_fd: i32, mut b: Vec<u8>) -> Timed {
        let u = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
        let (index, start, count) = (u(8), u(12), u(16));
        let fds: Vec<i32> = b[20..]
            .chunks(4)
            .map(|c| i32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let flags = u32::from_le_bytes(b[4..8].try_into().unwrap());
        let args = json!({
            "argsz": b.len(), "flags": flags, "flags_hex": hex(flags as u64),
            "index": index, "start": start, "count": count, "eventfds": fds,
        });
        self.ioctl_buf(step, dev_fd, VFIO_DEVICE_SET_IRQS, &mut b, args, |_| {
            Value::Null
        })
    }
}

pub fn errno_str(t: &Timed) -> String {
    format!(
        "ret {} errno {} ({})",
        t.ret,
        t.errno,
        crate::journal::errno_name(t.errno)
    )
}
