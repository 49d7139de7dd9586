//! VT010: interrupt setup order (vectors enabled or signalled with no
//! eventfd, vectors left bound after the kernel cleared their message).

use super::{Finding, RuleId};
use crate::engine::keys::{DevKey, EvId};
use crate::engine::msi::{ACTION_TRIGGER, DATA_BOOL, DATA_NONE, INDEX_MSI, INDEX_MSIX};
use crate::engine::Engine;
use crate::event::{MsiVector, VfioSetIrqs};

fn index_name(i: u32) -> &'static str {
    match i {
        0 => "INTx",
        1 => "MSI",
        INDEX_MSIX => "MSI-X",
        3 => "ERR",
        4 => "REQ",
        _ => "?",
    }
}

impl Engine {
    /// A vector reported enabled while no eventfd is bound to it.
    pub(crate) fn report_vector_without_eventfd(&mut self, k: DevKey, v: &MsiVector, id: EvId) {
        let msg = format!(
            "{} vector {} enabled with no eventfd bound: its interrupts are lost",
            index_name(v.index),
            v.vector
        );
        self.found
            .push(Finding::new(RuleId::IrqOrdering, k.node, msg, vec![id]).device(v.device));
    }

    /// At a SET_IRQS exit (the kernel is done with the device's vectors):
    /// a vector still bound to an eventfd whose MSI message the kernel
    /// cleared (wrote the all-zero message of a deactivated or freed
    /// vector). The device can no longer signal it, yet user space still
    /// waits on the eventfd. A normal teardown unbinds the vector
    /// (`msi_vector` disabled) right after clearing it, inside the same ioctl.
    pub(crate) fn check_cleared_but_bound(&mut self, k: DevKey, s: &VfioSetIrqs, id: EvId) {
        let Some(d) = self.msi.devices.get(&k) else {
            return;
        };
        // Only MSI and MSI-X vectors have messages (INTx, ERR and REQ
        // triggers share vector number 0 but are not programmed).
        let stale: Vec<(u32, u32, i32, EvId, EvId)> = d
            .vectors
            .iter()
            .filter(|(&(index, _), _)| index == INDEX_MSI || index == INDEX_MSIX)
            .filter_map(|(&(index, vector), v)| {
                let cleared = *d.cleared.get(&vector)?;
                Some((index, vector, v.eventfd, v.ev, cleared))
            })
            .collect();
        for (index, vector, fd, bind_ev, cleared_ev) in stale {
            let msg = format!(
                "{} vector {vector} still has eventfd {fd} bound after SET_IRQS, but the kernel cleared its MSI message (deactivated or freed the vector): its interrupts are lost",
                index_name(index)
            );
            self.found.push(
                Finding::new(
                    RuleId::IrqOrdering,
                    k.node,
                    msg,
                    vec![bind_ev, cleared_ev, id],
                )
                .device(s.device),
            );
        }
    }

    /// A vector's trigger went away (`msi_vector` disabled, or a SET_IRQS
    /// that de-assigned it or disabled its index) while the kernel's last
    /// word on its mask bit was "unmasked": `free_irq()` shuts the interrupt
    /// down through the irq chip's `irq_mask` (`pci_irq_mask_msi[x]`,
    /// `pci_msi_mask_irq`) before it returns, so a correct teardown always
    /// shows a mask after the unmask of `request_irq()`. Vectors whose
    /// device has no mask bit (`can_mask` false: MSI without per-vector
    /// masking, such as QEMU's edu, or a virtual MSI-X entry) are not
    /// judged: the kernel's mask call changes nothing there, so a missing
    /// one changes nothing either (MSI Enable is their only off switch).
    /// Vectors never seen masked or unmasked (probe absent, attached late)
    /// are not judged either.
    pub(crate) fn check_unmasked_teardown(
        &mut self,
        k: DevKey,
        index: u32,
        vector: u32,
        bind: EvId,
        id: EvId,
    ) {
        let Some(d) = self.msi.devices.get_mut(&k) else {
            return;
        };
        let cleared = d.cleared.get(&vector).copied();
        let Some(m) = d.mask_of(index, vector) else {
            return;
        };
        if m.masked || m.can_mask != Some(true) || m.reported {
            return;
        }
        m.reported = true;
        let unmask = m.ev;
        let mut evidence = vec![bind, unmask];
        let cleared_note = match cleared {
            Some(c) if c > unmask => {
                evidence.push(c);
                ", and its message was cleared (all-zero address) while it stayed unmasked"
            }
            _ => "",
        };
        evidence.push(id);
        evidence.sort_unstable();
        evidence.dedup();
        let msg = format!(
            "{} vector {vector}: its trigger eventfd went away but the kernel never masked it \
             (last mask-bit change: unmasked, no mask in the teardown){cleared_note}: the device \
             can still signal it with no handler bound",
            index_name(index)
        );
        self.found
            .push(Finding::new(RuleId::IrqOrdering, k.node, msg, evidence).device(k.device));
    }

    /// SET_IRQS trigger with DATA_NONE / DATA_BOOL (a software signal) on
    /// vectors that have no trigger eventfd.
    pub(crate) fn check_irq_signal(&mut self, k: DevKey, s: &VfioSetIrqs, id: EvId) {
        if s.flags & ACTION_TRIGGER == 0 || s.flags & (DATA_NONE | DATA_BOOL) == 0 || s.count == 0 {
            return;
        }
        let bound = self.msi.devices.get(&k);
        let missing: Vec<u32> = (0..s.count.min(64))
            .map(|i| s.start.saturating_add(i))
            .filter(|v| bound.is_none_or(|d| !d.vectors.contains_key(&(s.index, *v))))
            .collect();
        let Some(first) = missing.first() else {
            return;
        };
        let msg = format!(
            "{} vector(s) {:?} signalled by SET_IRQS with no trigger eventfd bound (first {first})",
            index_name(s.index),
            missing
        );
        self.found
            .push(Finding::new(RuleId::IrqOrdering, k.node, msg, vec![id]).device(s.device));
    }
}
