//! Reserved regions at start, and the devices they belong to.
//!
//! The `resv_regions` probe (on `iommu_get_group_resv_regions`) reports a
//! group's regions with their exact kernel type, but knows only the group.
//! sysfs knows the group's devices (`/sys/kernel/iommu_groups/N/devices/`),
//! and reading `/sys/kernel/iommu_groups/N/reserved_regions` makes the
//! kernel compute the regions with that same function. So at start every
//! group's file is read once (the probe then reports each group's regions
//! as they are now), and every `resv_region` event is given its group's
//! devices: one event per device. sysfs itself is not used for the types:
//! it prints "msi" for both hardware MSI and software-MSI windows.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

use tracer_core::event::{Device, Event, EventKind};

pub struct GroupDevices {
    root: PathBuf,
    devices: HashMap<u32, Vec<Device>>,
}

impl Default for GroupDevices {
    fn default() -> Self {
        Self::at("/sys/kernel/iommu_groups")
    }
}

impl GroupDevices {
    pub fn at(root: impl Into<PathBuf>) -> Self {
        GroupDevices {
            root: root.into(),
            devices: HashMap::new(),
        }
    }

    /// Reads every group's `reserved_regions` (the probe reports what the
    /// kernel computes for it); returns how many groups were read.
    pub fn read_all_regions(&mut self) -> usize {
        let Ok(dir) = std::fs::read_dir(&self.root) else {
            return 0;
        };
        let mut n = 0;
        for e in dir.flatten() {
            if std::fs::read(e.path().join("reserved_regions")).is_ok() {
                n += 1;
            }
        }
        n
    }

    /// The PCI devices of `group` (read from sysfs once; an unknown or
    /// empty group is read again next time, it may appear later).
    fn of(&mut self, group: u32) -> &[Device] {
        if !self.devices.contains_key(&group) {
            let found = pci_devices(&self.root.join(group.to_string()).join("devices"));
            if found.is_empty() {
                return &[];
            }
            self.devices.insert(group, found);
        }
        &self.devices[&group]
    }

    /// Every `resv_region` event without a device becomes one event per
    /// device of its group (kept as it is when the group has none).
    pub fn attribute(&mut self, batch: &mut Vec<Event>) {
        if !batch
            .iter()
            .any(|e| matches!(&e.kind, EventKind::ResvRegion(r) if r.device == Device::Unknown))
        {
            return;
        }
        let mut out = Vec::with_capacity(batch.len());
        for e in batch.drain(..) {
            let EventKind::ResvRegion(r) = &e.kind else {
                out.push(e);
                continue;
            };
            let devs = if r.device == Device::Unknown {
                self.of(r.group).to_vec()
            } else {
                Vec::new()
            };
            if devs.is_empty() {
                out.push(e);
                continue;
            }
            for d in devs {
                let mut one = e.clone();
                if let EventKind::ResvRegion(r) = &mut one.kind {
                    r.device = d;
                }
                out.push(one);
            }
        }
        *batch = out;
    }
}

fn pci_devices(dir: &Path) -> Vec<Device> {
    let mut v: Vec<Device> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter_map(|e| Device::parse(&e.file_name().to_string_lossy()))
                .collect()
        })
        .unwrap_or_default();
    v.sort_by_key(ToString::to_string);
    v
}

#[cfg(test)]
mod tests {
    use tracer_core::event::{Comm, ResvRegion, ResvType};

    use super::*;

    fn resv(group: u32, device: Device) -> Event {
        Event {
            ts_ns: 1,
            node: 0,
            pid: 1,
            tid: 1,
            comm: Comm::new("t"),
            kind: EventKind::ResvRegion(ResvRegion {
                group,
                device,
                start: 0xfee0_0000,
                end: 0xfeef_ffff,
                rtype: ResvType::Msi,
            }),
        }
    }

    fn dev(e: &Event) -> String {
        match &e.kind {
            EventKind::ResvRegion(r) => r.device.to_string(),
            k => format!("{k:?}"),
        }
    }

    #[test]
    fn regions_get_their_group_devices_from_sysfs() {
        let root = std::env::temp_dir().join(format!("vt-groups-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for (g, d) in [
            ("3", "0000:00:02.0"),
            ("3", "0000:00:02.1"),
            ("5", "0000:01:00.0"),
        ] {
            std::fs::create_dir_all(root.join(g).join("devices").join(d)).unwrap();
            std::fs::write(root.join(g).join("reserved_regions"), "").unwrap();
        }
        let mut gd = GroupDevices::at(&root);
        assert_eq!(gd.read_all_regions(), 2);
        let pci = Device::parse("0000:00:09.0").unwrap();
        let mut batch = vec![
            resv(3, Device::Unknown),
            resv(5, pci),
            resv(7, Device::Unknown),
        ];
        gd.attribute(&mut batch);
        let got: Vec<String> = batch.iter().map(dev).collect();
        assert_eq!(
            got,
            [
                "0000:00:02.0",
                "0000:00:02.1",
                "0000:00:09.0",
                &Device::Unknown.to_string()
            ],
            "group 3 → both its devices; a known device kept; group 7 unknown"
        );
        // A group that appears later is found then.
        std::fs::create_dir_all(root.join("7/devices/0000:00:04.0")).unwrap();
        let mut batch = vec![resv(7, Device::Unknown)];
        gd.attribute(&mut batch);
        assert_eq!(dev(&batch[0]), "0000:00:04.0");
        let _ = std::fs::remove_dir_all(&root);
    }
}
