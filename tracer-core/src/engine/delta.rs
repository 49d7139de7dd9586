//! What applying one event did that the state alone no longer shows: the
//! facts the rules of that event read alongside the state (which they see
//! as it is after the event).

use super::host::Pending;
use super::interval::Mapping;
use super::keys::EvId;

#[derive(Debug, Default)]
pub(crate) enum Delta {
    /// Nothing beyond the new state.
    #[default]
    None,
    /// A successful MAP_DMA: the pins and `iommu_map`s of its group (the
    /// thread's calls since its previous ioctl). Given back to the host
    /// state's buffers once the rules have run.
    MapDma(Pending),
    /// An UNMAP that removed less than asked of `[start, last]`: the
    /// mappings still (partly) inside it.
    Left {
        start: u64,
        last: u64,
        left: Vec<Mapping>,
    },
    /// A reserved region not known before.
    NewRegion,
    /// A successful SET_IRQS: the vectors of its index with a trigger bound
    /// before it (vector, binding event).
    SetIrqs { bound_before: Vec<(u32, EvId)> },
    /// An `msi_vector` disable of a vector that had a trigger: its binding.
    Unbound(EvId),
}
