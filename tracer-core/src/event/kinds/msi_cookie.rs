use std::fmt;

use serde::{Deserialize, Serialize};

use super::{sample, Category, Kind};
use crate::event::Event;
use crate::tracefile::codec::fields::{FieldReader, FieldWriter};
use crate::tracefile::varint::DecodeResult;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MsiCookie {
    pub domain: u64,
    pub base: u64,
}

impl fmt::Display for MsiCookie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "domain={:#x} base={:#x}", self.domain, self.base)
    }
}

impl Kind for MsiCookie {
    const CATEGORY: Category = Category::Msi;
    const SUBSYSTEM: &'static str = "msi";

    field_codec!(MsiCookie {
        domain: v,
        base: v,
    });

    fn track(&self, _pid: u32) -> String {
        format!("domain {:#x}", self.domain)
    }

    fn samples() -> Vec<Event> {
        vec![sample::qemu().at(
            4_400,
            MsiCookie {
                domain: sample::DOMAIN,
                base: 0x800_0000,
            },
        )]
    }
}
