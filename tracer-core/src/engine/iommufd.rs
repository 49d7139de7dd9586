//! iommufd objects and VFIO-cdev device bindings, by id: which IOAS, HWPT,
//! vIOMMU, ... exist in each iommufd, which device fd is bound as which
//! `dev_id`, and what each device is attached to. Only what the ioctls say
//! (successful calls); the IOAS-as-container chain (pins, `iommu_map` per
//! attached domain, doorbells) is not built here yet (issue 15).

use std::collections::BTreeMap;

use crate::event::{fd_handle, Event, EventKind, NodeId};

/// An iommufd on a node: `(node, fd_handle of the iommufd)`.
pub type IommufdKey = (NodeId, u64);

/// What an object id names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Object {
    Ioas,
    /// A HWPT allocated on `pt_id` (an IOAS, a parent HWPT or a vIOMMU) for
    /// `dev_id`, with its `flags` and vendor `data_type`.
    Hwpt {
        pt_id: u32,
        dev_id: u32,
        flags: u32,
        data_type: u32,
    },
    /// A HWPT the kernel created itself at attach (the id ATTACH returned).
    AutoHwpt {
        ioas_id: u32,
    },
    Viommu {
        hwpt_id: u32,
        dev_id: u32,
    },
    Vdevice {
        viommu_id: u32,
        dev_id: u32,
        virt_id: u64,
    },
    Veventq {
        viommu_id: u32,
    },
    FaultQueue,
}

/// A device cdev bound to an iommufd.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Binding {
    /// `fd_handle` of the device cdev.
    pub device: u64,
    /// The IOAS or HWPT attached (`out_pt_id`), if any.
    pub attached: Option<u32>,
}

#[derive(Clone, Debug, Default)]
pub struct IommufdState {
    /// Live objects: `(iommufd, id)` → what it is.
    pub objects: BTreeMap<(IommufdKey, u32), Object>,
    /// Bound devices: `(iommufd, dev_id)` → the device.
    pub devices: BTreeMap<(IommufdKey, u32), Binding>,
    /// `(node, device fd_handle)` → its iommufd and dev_id (ATTACH names
    /// only the device fd).
    bound: BTreeMap<(NodeId, u64), (IommufdKey, u32)>,
}

impl IommufdState {
    /// The device bound as `dev_id` in `iommufd`.
    pub fn device(&self, iommufd: IommufdKey, dev_id: u32) -> Option<&Binding> {
        self.devices.get(&(iommufd, dev_id))
    }

    pub(crate) fn apply(&mut self, e: &Event) {
        if e.kind.errno() != 0 {
            return;
        }
        let n = e.node;
        let mut add = |fd: u64, id: u32, o: Object| {
            self.objects.insert(((n, fd), id), o);
        };
        match &e.kind {
            EventKind::IoasAlloc(a) => add(a.iommufd, a.out_ioas_id, Object::Ioas),
            EventKind::HwptAlloc(a) => add(
                a.iommufd,
                a.out_hwpt_id,
                Object::Hwpt {
                    pt_id: a.pt_id,
                    dev_id: a.dev_id,
                    flags: a.flags,
                    data_type: a.data_type,
                },
            ),
            EventKind::ViommuAlloc(a) => add(
                a.iommufd,
                a.out_viommu_id,
                Object::Viommu {
                    hwpt_id: a.hwpt_id,
                    dev_id: a.dev_id,
                },
            ),
            EventKind::VdeviceAlloc(a) => add(
                a.iommufd,
                a.out_vdevice_id,
                Object::Vdevice {
                    viommu_id: a.viommu_id,
                    dev_id: a.dev_id,
                    virt_id: a.virt_id,
                },
            ),
            EventKind::VeventqAlloc(a) => add(
                a.iommufd,
                a.out_veventq_id,
                Object::Veventq {
                    viommu_id: a.viommu_id,
                },
            ),
            EventKind::FaultQueueAlloc(a) => add(a.iommufd, a.out_fault_id, Object::FaultQueue),
            EventKind::IommufdDestroy(d) => {
                self.objects.remove(&((n, d.iommufd), d.id));
            }
            EventKind::VfioBindIommufd(b) => {
                // The iommufd is an fd of the same process as the device fd.
                let Ok(fd) = u32::try_from(b.iommufd) else {
                    return;
                };
                let iommufd = (n, fd_handle((b.device >> 32) as u32, fd));
                self.bound.insert((n, b.device), (iommufd, b.out_devid));
                self.devices.insert(
                    (iommufd, b.out_devid),
                    Binding {
                        device: b.device,
                        attached: None,
                    },
                );
            }
            EventKind::VfioAttachPt(a) if a.flags == 0 => {
                let Some(&(iommufd, dev_id)) = self.bound.get(&(n, a.device)) else {
                    return;
                };
                if let Some(b) = self.devices.get_mut(&(iommufd, dev_id)) {
                    b.attached = Some(a.out_pt_id);
                }
                // Attached to an IOAS, the kernel made a HWPT and returned its id.
                let asked = self.objects.get(&(iommufd, a.pt_id));
                if a.out_pt_id != a.pt_id && asked == Some(&Object::Ioas) {
                    self.objects.insert(
                        (iommufd, a.out_pt_id),
                        Object::AutoHwpt { ioas_id: a.pt_id },
                    );
                }
            }
            EventKind::VfioDetachPt(d) if d.flags == 0 => {
                let Some(key) = self.bound.get(&(n, d.device)) else {
                    return;
                };
                if let Some(b) = self.devices.get_mut(key) {
                    b.attached = None;
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::build::Task;
    use crate::event::{IoasAlloc, IommufdDestroy, VfioAttachPt, VfioBindIommufd, VfioDetachPt};

    #[test]
    fn bind_attach_detach_and_destroy() {
        let t = Task::new(0, 77, 77, "qemu");
        let fd = fd_handle(77, 5);
        let dev = fd_handle(77, 9);
        let mut s = IommufdState::default();
        let evs = [
            t.at(
                1,
                IoasAlloc {
                    iommufd: fd,
                    size: 12,
                    flags: 0,
                    out_ioas_id: 2,
                    errno: 0,
                },
            ),
            t.at(
                2,
                VfioBindIommufd {
                    device: dev,
                    argsz: 16,
                    flags: 0,
                    iommufd: 5,
                    out_devid: 1,
                    token_uuid_ptr: 0,
                    errno: 0,
                },
            ),
            t.at(
                3,
                VfioAttachPt {
                    device: dev,
                    argsz: 16,
                    flags: 0,
                    pt_id: 2,
                    out_pt_id: 3,
                    pasid: 0,
                    errno: 0,
                },
            ),
        ];
        for e in &evs {
            s.apply(e);
        }
        assert_eq!(
            s.device((0, fd), 1),
            Some(&Binding {
                device: dev,
                attached: Some(3)
            })
        );
        assert_eq!(
            s.objects.get(&((0, fd), 3)),
            Some(&Object::AutoHwpt { ioas_id: 2 })
        );
        // A failed call changes nothing.
        s.apply(&t.at(
            4,
            VfioDetachPt {
                device: dev,
                argsz: 12,
                flags: 0,
                pasid: 0,
                errno: 22,
            },
        ));
        assert_eq!(s.device((0, fd), 1).unwrap().attached, Some(3));
        s.apply(&t.at(
            5,
            VfioDetachPt {
                device: dev,
                argsz: 12,
                flags: 0,
                pasid: 0,
                errno: 0,
            },
        ));
        assert_eq!(s.device((0, fd), 1).unwrap().attached, None);
        s.apply(&t.at(
            6,
            IommufdDestroy {
                iommufd: fd,
                size: 8,
                id: 2,
                errno: 0,
            },
        ));
        assert!(!s.objects.contains_key(&((0, fd), 2)));
    }
}

#[cfg(test)]
mod engine_tests {
    use super::*;
    use crate::engine::{Engine, EngineConfig};
    use crate::event::build::Task;
    use crate::event::{HwptAlloc, VfioBindIommufd};

    /// The engine's apply reaches this state (and a HWPT's parent is kept).
    #[test]
    fn the_engine_records_bindings_and_hwpts() {
        let mut eng = Engine::new(Vec::new(), EngineConfig::default());
        let t = Task::new(0, 50, 50, "qemu");
        let (fd, dev) = (fd_handle(50, 4), fd_handle(50, 8));
        eng.apply(&t.at(
            1,
            VfioBindIommufd {
                device: dev,
                argsz: 24,
                flags: 0,
                iommufd: 4,
                out_devid: 3,
                token_uuid_ptr: 0,
                errno: 0,
            },
        ));
        eng.apply(&t.at(
            2,
            HwptAlloc {
                iommufd: fd,
                size: 48,
                flags: 1,
                dev_id: 3,
                pt_id: 2,
                out_hwpt_id: 6,
                data_type: 0,
                data_len: 0,
                data_uptr: 0,
                fault_id: 0,
                data: Vec::new(),
                ste: Vec::new(),
                pgtbl_addr: 0,
                addr_width: 0,
                s1_flags: 0,
                errno: 0,
            },
        ));
        let s = eng.iommufd();
        assert_eq!(s.device((0, fd), 3).map(|b| b.device), Some(dev));
        assert_eq!(
            s.objects.get(&((0, fd), 6)),
            Some(&Object::Hwpt {
                pt_id: 2,
                dev_id: 3,
                flags: 1,
                data_type: 0
            })
        );
    }
}
