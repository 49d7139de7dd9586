//! VT010: interrupt setup order (vectors enabled or signalled with no eventfd).

use super::{Finding, RuleId};
use crate::engine::keys::{DevKey, EvId};
use crate::engine::msi::{ACTION_TRIGGER, DATA_BOOL, DATA_NONE, INDEX_MSIX};
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
