//! Bringing up the VFIO objects on demand: container → groups → IOMMU
//! backend → device fds → DMA buffers. Each `ensure_*` journals its calls
//! under its own step name and is a no-op once done.

use anyhow::{anyhow, Context, Result};
use serde_json::{json, Value};

use crate::{
    journal::hex,
    session::{errno_str, group_of, Device, Session},
    vfio::*,
};

/// The two DMA buffers of the clean path: A (source) and B (destination),
/// far from IOVA 0 (VFIO probes large pages there) and below edu's 28-bit
/// DMA mask.
pub const BUF_A_IOVA: u64 = 0x10_0000;
pub const BUF_B_IOVA: u64 = 0x20_0000;
pub const BUF_LEN: usize = 0x1_0000;

impl Session {
    pub fn ensure_container(&mut self) -> Result<()> {
        if self.container >= 0 {
            return Ok(());
        }
        let step = "open_container";
        let fd = self.open(step, "/dev/vfio/vfio")?;
        self.container = fd;
        let t = self.ioctl_val(step, fd, VFIO_GET_API_VERSION, 0);
        if t.ret != VFIO_API_VERSION as i64 {
            return Err(anyhow!("VFIO API version {}", t.ret));
        }
        let t = self.ioctl_val(step, fd, VFIO_CHECK_EXTENSION, VFIO_TYPE1V2_IOMMU);
        if t.ret != 1 {
            return Err(anyhow!("no VFIO_TYPE1v2_IOMMU support"));
        }
        Ok(())
    }

    fn device_bdfs(&self) -> Vec<String> {
        self.edu_bdf
            .iter()
            .chain(self.e1000e_bdf.iter())
            .cloned()
            .collect()
    }

    /// Opens every device's group and adds it to the container.
    pub fn ensure_groups(&mut self) -> Result<()> {
        self.ensure_container()?;
        let step = "open_groups";
        for bdf in self.device_bdfs() {
            let g = group_of(&bdf)?;
            if self.groups.iter().any(|(n, _)| *n == g) {
                continue;
            }
            let fd = self.open(step, &format!("/dev/vfio/{g}"))?;
            let mut st = GroupStatus { argsz: 8, flags: 0 };
            let t = self.ioctl_ptr(
                step,
                fd,
                VFIO_GROUP_GET_STATUS,
                &mut st,
                json!({"argsz": 8}),
                |s| json!({ "flags": s.flags }),
            );
            if !t.ok() || st.flags & VFIO_GROUP_FLAGS_VIABLE == 0 {
                return Err(anyhow!("group {g} not viable ({})", errno_str(&t)));
            }
            let mut c = self.container;
            let args = json!({ "container_fd": c, "group": g });
            let t = self.ioctl_ptr(step, fd, VFIO_GROUP_SET_CONTAINER, &mut c, args, |_| {
                Value::Null
            });
            if !t.ok() {
                return Err(anyhow!("GROUP_SET_CONTAINER group {g}: {}", errno_str(&t)));
            }
            self.groups.push((g, fd));
        }
        Ok(())
    }

    pub fn ensure_iommu(&mut self) -> Result<()> {
        self.ensure_groups()?;
        if self.iommu_set {
            return Ok(());
        }
        let t = self.ioctl_val("set_iommu", self.container, VFIO_SET_IOMMU, self.iommu_type);
        if !t.ok() {
            return Err(anyhow!(
                "SET_IOMMU type {}: {}",
                self.iommu_type,
                errno_str(&t)
            ));
        }
        self.iommu_set = true;
        Ok(())
    }

    pub fn get_info(&mut self, step: &str) -> Result<String> {
        self.ensure_iommu()?;
        let mut b = vec![0u8; 4096];
        let argsz = b.len() as u32;
        b[0..4].copy_from_slice(&argsz.to_le_bytes());
        let fd = self.container;
        let mut ranges = None;
        let t = self.ioctl_buf(
            step,
            fd,
            VFIO_IOMMU_GET_INFO,
            &mut b,
            json!({ "argsz": 4096 }),
            |b| {
                let flags = u32::from_le_bytes(b[4..8].try_into().unwrap());
                let pgsizes = u64::from_le_bytes(b[8..16].try_into().unwrap());
                ranges = parse_iova_ranges(b);
                json!({
                    "argsz": u32::from_le_bytes(b[0..4].try_into().unwrap()),
                    "flags": flags,
                    "pgsizes": pgsizes, "pgsizes_hex": hex(pgsizes),
                    "caps": flags & VFIO_IOMMU_INFO_CAPS != 0,
                    "pgsizes_valid": flags & VFIO_IOMMU_INFO_PGSIZES != 0,
                    "dma_avail_cap": VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
                    "iova_ranges": ranges.as_ref().map(|r| r.iter()
                        .map(|(s, e)| json!({"start": s, "end": e,
                            "start_hex": hex(*s), "end_hex": hex(*e)}))
                        .collect::<Vec<_>>()),
                })
            },
        );
        if !t.ok() {
            return Err(anyhow!("IOMMU_GET_INFO: {}", errno_str(&t)));
        }
        let r = ranges.context("no IOVA range capability")?;
        let shown: Vec<String> = r.iter().map(|(s, e)| format!("{s:#x}-{e:#x}")).collect();
        self.iova_ranges = r;
        Ok(format!("iova ranges {}", shown.join(",")))
    }

    fn open_device(&mut self, bdf: &str) -> Result<Device> {
        self.ensure_iommu()?;
        let step = "open_device";
        let g = group_of(bdf)?;
        let gfd = self
            .groups
            .iter()
            .find(|(n, _)| *n == g)
            .map(|(_, fd)| *fd)
            .context("group not open")?;
        let mut name = std::ffi::CString::new(bdf)?.into_bytes_with_nul();
        let t = self.ioctl_buf(
            step,
            gfd,
            VFIO_GROUP_GET_DEVICE_FD,
            &mut name,
            json!({ "name": bdf }),
            |_| Value::Null,
        );
        if !t.ok() {
            return Err(anyhow!("GET_DEVICE_FD {bdf}: {}", errno_str(&t)));
        }
        let fd = t.ret as i32;
        let mut di = DeviceInfo {
            argsz: std::mem::size_of::<DeviceInfo>() as u32,
            ..Default::default()
        };
        self.ioctl_ptr(
            step,
            fd,
            VFIO_DEVICE_GET_INFO,
            &mut di,
            json!({}),
            |d| json!({ "flags": d.flags, "num_regions": d.num_regions, "num_irqs": d.num_irqs }),
        );
        let region = |s: &mut Session, index: u32| -> Result<RegionInfo> {
            let mut ri = RegionInfo {
                argsz: std::mem::size_of::<RegionInfo>() as u32,
                index,
                ..Default::default()
            };
            let t = s.ioctl_ptr(
                step,
                fd,
                VFIO_DEVICE_GET_REGION_INFO,
                &mut ri,
                json!({ "index": index }),
                |r| {
                    json!({ "flags": r.flags, "size": r.size, "offset": r.offset,
                            "offset_hex": hex(r.offset) })
                },
            );
            if t.ok() {
                Ok(ri)
            } else {
                Err(anyhow!("GET_REGION_INFO {index}: {}", errno_str(&t)))
            }
        };
        let bar0 = region(self, VFIO_PCI_BAR0_REGION_INDEX)?;
        let cfg = region(self, VFIO_PCI_CONFIG_REGION_INDEX)?;
        let dev = Device {
            bdf: bdf.to_string(),
            group: g,
            fd,
            bar0_offset: bar0.offset,
            bar0_size: bar0.size,
            config_offset: cfg.offset,
        };
        // vfio-pci leaves bus mastering off: PCI_COMMAND |= MEMORY | MASTER.
        let mut cmd = [0u8; 2];
        self.region_rw(step, fd, dev.config_offset, 4, &mut cmd, false, true)?;
        let v = u16::from_le_bytes(cmd) | 0x6;
        let mut cmd = v.to_le_bytes();
        self.region_rw(step, fd, dev.config_offset, 4, &mut cmd, true, true)?;
        self.j.write(json!({
            "type": "device", "step": step, "bdf": dev.bdf, "group": dev.group,
            "fd": dev.fd, "bar0_size": dev.bar0_size,
        }));
        Ok(dev)
    }

    pub fn ensure_edu(&mut self) -> Result<()> {
        if self.edu.is_none() {
            let bdf = self
                .edu_bdf
                .clone()
                .context("no edu device given (--edu)")?;
            self.edu = Some(self.open_device(&bdf)?);
        }
        Ok(())
    }

    pub fn ensure_e1000e(&mut self) -> Result<()> {
        if self.e1000e.is_none() {
            let bdf = self
                .e1000e_bdf
                .clone()
                .context("no e1000e device given (--e1000e)")?;
            self.e1000e = Some(self.open_device(&bdf)?);
        }
        Ok(())
    }

    /// Maps buffers A and B (step `map_dma`).
    pub fn ensure_mapped(&mut self) -> Result<String> {
        self.ensure_iommu()?;
        if self.bufs.len() >= 2 && self.bufs[0].mapped && self.bufs[1].mapped {
            return Ok("already mapped".into());
        }
        if self.bufs.is_empty() {
            self.alloc_buf(BUF_LEN, BUF_A_IOVA)?;
            self.alloc_buf(BUF_LEN, BUF_B_IOVA)?;
        }
        let mut done = Vec::new();
        for i in 0..2 {
            let (vaddr, iova, len) = {
                let b = &self.bufs[i];
                (b.ptr as u64, b.iova, b.len as u64)
            };
            let t = self.map_dma("map_dma", vaddr, iova, len);
            if !t.ok() {
                return Err(anyhow!("MAP_DMA iova {iova:#x}: {}", errno_str(&t)));
            }
            self.bufs[i].mapped = true;
            done.push(format!("{iova:#x}+{len:#x}"));
        }
        Ok(format!("mapped {}", done.join(" ")))
    }
}
