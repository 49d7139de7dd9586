//! Per-kind field layouts (format version 2; version 1 is the same without
//! kind 19). Kind ids are part of the file
//! format: append new kinds at the end, never renumber.
//!
//! Field codings: `d` = zigzag varint of the difference to the same field of
//! the previous event of this kind in the chunk (addresses, handles, sizes:
//! repeated or nearby values cost one or two bytes); `v` = varint; `z` =
//! zigzag varint (errno, eventfds); `b` = one byte (bools, small enums);
//! `s` = varint length + UTF-8 bytes; `dev` = `Device` (b tag 0 PCI: v seg,
//! b bus, b dev, b func; 1 fd: v; 2 unknown); lists = v length + elements.
//!
//! Each kind's layout is in its module under event/kinds/ (`Kind::encode`
//! and `Kind::decode`, with the codings of [`super::fields`]); this file
//! only finds the kind's delta slots.

use super::fields::{FieldReader, FieldWriter};
use super::Deltas;
use crate::event::EventKind;
use crate::tracefile::varint::{Cursor, DecodeResult};

pub(super) use crate::event::KIND_COUNT;

pub(super) fn kind_id(k: &EventKind) -> u8 {
    k.id()
}

pub(super) fn encode(k: &EventKind, out: &mut Vec<u8>, deltas: &mut Deltas) {
    let mut w = FieldWriter {
        out,
        prev: &mut deltas.0[usize::from(k.id())],
    };
    k.encode_fields(&mut w);
}

pub(super) fn decode(id: u8, c: &mut Cursor<'_>, deltas: &mut Deltas) -> DecodeResult<EventKind> {
    let Some(prev) = deltas.0.get_mut(usize::from(id)) else {
        return c.err(format!("unknown event kind id {id}"));
    };
    EventKind::decode_fields(id, &mut FieldReader { c, prev })
}
