//! The recent events, each with its engine id and its rendered line, in a
//! bounded ring: the Events view pages through it and evidence is looked up
//! in it.

use std::collections::VecDeque;

use tracer_core::event::Event;

use crate::tui::event_info;

/// Events kept for the Events view by default.
pub const DEFAULT_CAPACITY: usize = 200_000;

#[derive(Clone, Debug)]
pub struct Row {
    /// The engine's event id (order of arrival, from 0).
    pub id: u64,
    pub event: Event,
    /// Kind and fields as text (what the view shows and `/` searches).
    pub details: String,
}

#[derive(Debug)]
pub struct History {
    rows: VecDeque<Row>,
    capacity: usize,
}

impl History {
    pub fn new(capacity: usize) -> Self {
        History {
            rows: VecDeque::with_capacity(capacity.min(4096)),
            capacity: capacity.max(1),
        }
    }

    pub fn push(&mut self, id: u64, event: &Event) {
        if self.rows.len() == self.capacity {
            self.rows.pop_front();
        }
        self.rows.push_back(Row {
            id,
            details: event_info::details(event),
            event: event.clone(),
        });
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Row> + ExactSizeIterator {
        self.rows.iter()
    }

    /// The row of event `id`, while it is still kept.
    pub fn get(&self, id: u64) -> Option<&Row> {
        let first = self.rows.front()?.id;
        let i = usize::try_from(id.checked_sub(first)?).ok()?;
        self.rows.get(i).filter(|r| r.id == id)
    }
}

#[cfg(test)]
mod tests {
    use tracer_core::event::{Comm, Drops, EventKind};

    use super::*;

    fn ev() -> Event {
        Event {
            ts_ns: 0,
            node: 0,
            pid: 0,
            tid: 0,
            comm: Comm::new("x"),
            kind: EventKind::Drops(Drops {
                ring_full: 0,
                pending_full: 0,
                read_failed: 0,
                undecodable: 0,
            }),
        }
    }

    #[test]
    fn keeps_the_newest_and_finds_by_id() {
        let mut h = History::new(3);
        for id in 0..5 {
            h.push(id, &ev());
        }
        assert_eq!(h.len(), 3);
        assert!(h.get(1).is_none());
        assert_eq!(h.get(3).unwrap().id, 3);
        assert!(h.get(9).is_none());
    }
}
