//! VT010 irq-ordering: MSI enabled with no eventfd bound, a vector
//! signalled with no trigger, a vector left bound after the kernel cleared
//! its message, a vector disabled without masking.
//!
//! Subscribes to: `vfio_set_irqs` (successful, with the vectors bound
//! before it, [`Delta::SetIrqs`]), `msi_vector` (with the binding a
//! disable removed, [`Delta::Unbound`]). Keeps its own memory: the
//! unmasks whose teardown it already reported.

use std::collections::BTreeSet;

use super::{Finding, Findings, RuleId};
use crate::engine::delta::Delta;
use crate::engine::keys::{DevKey, EvId};
use crate::engine::msi::{ACTION_TRIGGER, DATA_BOOL, DATA_NONE, INDEX_MSI, INDEX_MSIX};
use crate::engine::state::State;
use crate::event::{Event, MsiVector, VfioSetIrqs};

/// What VT010 remembers between events.
#[derive(Clone, Debug, Default)]
pub(crate) struct Memory {
    /// `msi_mask` unmask events whose vector's teardown was reported: one
    /// finding per unmasked state.
    reported: BTreeSet<EvId>,
}

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

pub(crate) fn on_set_irqs(
    st: &State,
    mem: &mut Memory,
    e: &Event,
    s: &VfioSetIrqs,
    fx: &Delta,
    id: EvId,
    out: &mut Findings,
) {
    let Delta::SetIrqs { bound_before } = fx else {
        return;
    };
    let k = DevKey::new(e.node, e.pid, s.device);
    signal_without_trigger(k, s, bound_before, id, out);
    let after = st.msi.bound(k, s.index);
    for &(v, bind) in bound_before {
        if !after.iter().any(|(w, _)| *w == v) {
            unmasked_teardown(st, mem, k, (s.index, v), bind, id, out);
        }
    }
    cleared_but_bound(st, k, s, id, out);
}

pub(crate) fn on_msi_vector(
    st: &State,
    mem: &mut Memory,
    e: &Event,
    v: &MsiVector,
    fx: &Delta,
    id: EvId,
    out: &mut Findings,
) {
    let k = DevKey::new(e.node, e.pid, v.device);
    if v.enabled && v.eventfd < 0 {
        // A vector reported enabled while no eventfd is bound to it.
        let msg = format!(
            "{} vector {} enabled with no eventfd bound: its interrupts are lost",
            index_name(v.index),
            v.vector
        );
        out.push(Finding::new(RuleId::IrqOrdering, k.node, msg, vec![id]).device(v.device));
    }
    // The trigger went away: the kernel must have masked the vector.
    if let Delta::Unbound(bind) = fx {
        unmasked_teardown(st, mem, k, (v.index, v.vector), *bind, id, out);
    }
}

/// SET_IRQS trigger with DATA_NONE / DATA_BOOL (a software signal) on
/// vectors that had no trigger eventfd.
fn signal_without_trigger(
    k: DevKey,
    s: &VfioSetIrqs,
    bound_before: &[(u32, EvId)],
    id: EvId,
    out: &mut Findings,
) {
    if s.flags & ACTION_TRIGGER == 0 || s.flags & (DATA_NONE | DATA_BOOL) == 0 || s.count == 0 {
        return;
    }
    let missing: Vec<u32> = (0..s.count.min(64))
        .map(|i| s.start.saturating_add(i))
        .filter(|v| !bound_before.iter().any(|(b, _)| b == v))
        .collect();
    let Some(first) = missing.first() else {
        return;
    };
    let msg = format!(
        "{} vector(s) {:?} signalled by SET_IRQS with no trigger eventfd bound (first {first})",
        index_name(s.index),
        missing
    );
    out.push(Finding::new(RuleId::IrqOrdering, k.node, msg, vec![id]).device(s.device));
}

/// At a SET_IRQS exit (the kernel is done with the device's vectors): a
/// vector still bound to an eventfd whose MSI message the kernel cleared
/// (wrote the all-zero message of a deactivated or freed vector). The
/// device can no longer signal it, yet user space still waits on the
/// eventfd. A normal teardown unbinds the vector (`msi_vector` disabled)
/// right after clearing it, inside the same ioctl.
fn cleared_but_bound(st: &State, k: DevKey, s: &VfioSetIrqs, id: EvId, out: &mut Findings) {
    let Some(d) = st.msi.devices.get(&k) else {
        return;
    };
    // Only MSI and MSI-X vectors have messages (INTx, ERR and REQ
    // triggers share vector number 0 but are not programmed).
    let stale = d
        .vectors
        .iter()
        .filter(|(&(index, _), _)| index == INDEX_MSI || index == INDEX_MSIX)
        .filter_map(|(&(index, vector), v)| {
            let cleared = *d.cleared.get(&vector)?;
            Some((index, vector, v.eventfd, v.ev, cleared))
        });
    for (index, vector, fd, bind_ev, cleared_ev) in stale {
        let msg = format!(
            "{} vector {vector} still has eventfd {fd} bound after SET_IRQS, but the kernel cleared its MSI message (deactivated or freed the vector): its interrupts are lost",
            index_name(index)
        );
        out.push(
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

/// A vector's trigger went away (`msi_vector` disabled, or a SET_IRQS that
/// de-assigned it or disabled its index) while the kernel's last word on
/// its mask bit was "unmasked": `free_irq()` shuts the interrupt down
/// through the irq chip's `irq_mask` (`pci_irq_mask_msi[x]`,
/// `pci_msi_mask_irq`) before it returns, so a correct teardown always
/// shows a mask after the unmask of `request_irq()`. Vectors whose device
/// has no mask bit (`can_mask` false: MSI without per-vector masking, such
/// as QEMU's edu, or a virtual MSI-X entry) are not judged: the kernel's
/// mask call changes nothing there, so a missing one changes nothing
/// either (MSI Enable is their only off switch). Vectors never seen masked
/// or unmasked (probe absent, attached late) are not judged either.
fn unmasked_teardown(
    st: &State,
    mem: &mut Memory,
    k: DevKey,
    (index, vector): (u32, u32),
    bind: EvId,
    id: EvId,
    out: &mut Findings,
) {
    let Some(d) = st.msi.devices.get(&k) else {
        return;
    };
    let cleared = d.cleared.get(&vector).copied();
    let Some(m) = d.mask_of(index, vector) else {
        return;
    };
    if m.masked || m.can_mask != Some(true) || !mem.reported.insert(m.ev) {
        return;
    }
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
    out.push(Finding::new(RuleId::IrqOrdering, k.node, msg, evidence).device(k.device));
}
