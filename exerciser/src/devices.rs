//! QEMU's edu (1234:11e8) and e1000e (8086:10d3) driven through VFIO.

use anyhow::{anyhow, Context, Result};
use std::{
    thread::sleep,
    time::{Duration, Instant},
};

use crate::{
    session::{errno_str, Session, StepResult},
    vfio::{IrqInfo, VFIO_DEVICE_GET_IRQ_INFO, VFIO_PCI_MSIX_IRQ_INDEX, VFIO_PCI_MSI_IRQ_INDEX},
};

// edu BAR0 registers (QEMU docs/specs/edu.rst).
const EDU_ID: u64 = 0x00;
const EDU_IRQ_STATUS: u64 = 0x24;
const EDU_IRQ_RAISE: u64 = 0x60;
const EDU_IRQ_ACK: u64 = 0x64;
const EDU_DMA_SRC: u64 = 0x80;
const EDU_DMA_DST: u64 = 0x88;
const EDU_DMA_COUNT: u64 = 0x90;
const EDU_DMA_CMD: u64 = 0x98;
const EDU_DMA_START: u32 = 1;
const EDU_DMA_TO_RAM: u32 = 2;
/// edu's internal buffer, as a DMA address.
const EDU_BUF: u32 = 0x4_0000;
/// Below edu's 4 KiB buffer size: QEMU 7.2 aborts on a DMA that touches
/// its last byte.
const DMA_LEN: usize = 4000;

// e1000e BAR0 registers.
const E1000_ICR: u64 = 0xC0;
const E1000_ICS: u64 = 0xC8;
const E1000_IMS: u64 = 0xD0;
const E1000_IMC: u64 = 0xD8;
const E1000_IVAR: u64 = 0xE4;
/// Interrupt causes RxQ0, RxQ1, TxQ0, TxQ1, Other: one per MSI-X vector.
const E1000_CAUSES: [u32; 5] = [1 << 20, 1 << 21, 1 << 22, 1 << 23, 1 << 24];

type Rw = (i32, u64);

fn bar0(s: &Session, e1000e: bool) -> Result<Rw> {
    let d = if e1000e { &s.e1000e } else { &s.edu };
    d.as_ref()
        .map(|d| (d.fd, d.bar0_offset))
        .context("device not open")
}

fn rd32(s: &mut Session, step: &str, (fd, off): Rw, reg: u64, log: bool) -> Result<u32> {
    let mut b = [0u8; 4];
    s.region_rw(step, fd, off, reg, &mut b, false, log)?;
    Ok(u32::from_le_bytes(b))
}

fn wr32(s: &mut Session, step: &str, (fd, off): Rw, reg: u64, v: u32) -> Result<()> {
    let mut b = v.to_le_bytes();
    s.region_rw(step, fd, off, reg, &mut b, true, true)
}

fn edu_wait_dma(s: &mut Session, step: &str, r: Rw) -> Result<()> {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(10) {
        if rd32(s, step, r, EDU_DMA_CMD, false)? & EDU_DMA_START == 0 {
            return Ok(());
        }
        sleep(Duration::from_millis(5));
    }
    Err(anyhow!("edu DMA did not complete within 10 s"))
}

pub fn edu_dma(s: &mut Session, step: &str) -> StepResult {
    s.ensure_edu()?;
    s.ensure_mapped()?;
    let r = bar0(s, false)?;
    let id = rd32(s, step, r, EDU_ID, true)?;
    if id & 0xff != 0xed {
        return Err(anyhow!("edu id register {id:#x}, expected 0x..ed"));
    }
    let (a_iova, b_iova) = (s.bufs[0].iova, s.bufs[1].iova + 0x100);
    let pattern: Vec<u8> = (0..DMA_LEN).map(|i| (i * 7 + 3) as u8).collect();
    s.bufs[0].bytes()[..DMA_LEN].copy_from_slice(&pattern);
    s.bufs[1].bytes().fill(0);
    // RAM (A) → edu buffer.
    wr32(s, step, r, EDU_DMA_SRC, a_iova as u32)?;
    wr32(s, step, r, EDU_DMA_DST, EDU_BUF)?;
    wr32(s, step, r, EDU_DMA_COUNT, DMA_LEN as u32)?;
    wr32(s, step, r, EDU_DMA_CMD, EDU_DMA_START)?;
    edu_wait_dma(s, step, r)?;
    // edu buffer → RAM (B + 0x100).
    wr32(s, step, r, EDU_DMA_SRC, EDU_BUF)?;
    wr32(s, step, r, EDU_DMA_DST, b_iova as u32)?;
    wr32(s, step, r, EDU_DMA_COUNT, DMA_LEN as u32)?;
    wr32(s, step, r, EDU_DMA_CMD, EDU_DMA_START | EDU_DMA_TO_RAM)?;
    edu_wait_dma(s, step, r)?;
    let got = &s.bufs[1].bytes()[0x100..0x100 + DMA_LEN];
    if got != pattern.as_slice() {
        let first = got
            .iter()
            .zip(&pattern)
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        return Err(anyhow!("DMA data mismatch at byte {first}"));
    }
    let j = serde_json::json!({
        "type": "dma", "step": step, "device": "edu",
        "src_iova": a_iova, "dst_iova": b_iova, "len": DMA_LEN, "verified": true,
    });
    s.j.write(j);
    Ok(format!(
        "{DMA_LEN} bytes {a_iova:#x} → edu → {b_iova:#x} verified"
    ))
}

pub fn edu_msi(s: &mut Session, step: &str) -> StepResult {
    s.ensure_edu()?;
    let r = bar0(s, false)?;
    s.with_irqs(step, r.0, VFIO_PCI_MSI_IRQ_INDEX, 1, |s, fds| {
        wr32(s, step, r, EDU_IRQ_RAISE, 1)?;
        let n = s.wait_eventfd(step, fds[0], 3000);
        let status = rd32(s, step, r, EDU_IRQ_STATUS, true)?;
        wr32(s, step, r, EDU_IRQ_ACK, status)?;
        if n == 0 {
            return Err(anyhow!(
                "no MSI on the eventfd within 3 s (irq status {status:#x})"
            ));
        }
        Ok(format!(
            "MSI delivered (eventfd count {n}, status {status:#x}) and acked"
        ))
    })
}

pub fn e1000e_msix(s: &mut Session, step: &str) -> StepResult {
    s.ensure_e1000e()?;
    let r = bar0(s, true)?;
    let mut info = IrqInfo {
        argsz: std::mem::size_of::<IrqInfo>() as u32,
        index: VFIO_PCI_MSIX_IRQ_INDEX,
        ..Default::default()
    };
    let t = s.ioctl_ptr(
        step,
        r.0,
        VFIO_DEVICE_GET_IRQ_INFO,
        &mut info,
        serde_json::json!({ "index": VFIO_PCI_MSIX_IRQ_INDEX }),
        |i| serde_json::json!({ "flags": i.flags, "count": i.count }),
    );
    if !t.ok() || (info.count as usize) < E1000_CAUSES.len() {
        return Err(anyhow!(
            "GET_IRQ_INFO MSI-X: {} count {}",
            errno_str(&t),
            info.count
        ));
    }
    s.with_irqs(
        step,
        r.0,
        VFIO_PCI_MSIX_IRQ_INDEX,
        E1000_CAUSES.len(),
        |s, fds| {
            let res = (|| {
                // Cause k → vector k (valid bit 8 per 4-bit field), Other in
                // bits 16-19; bit 31 asks for an interrupt on every write-back.
                let ivar = (0..5u32).fold(0x8000_0000, |acc, k| acc | ((8 | k) << (4 * k)));
                wr32(s, step, r, E1000_IVAR, ivar)?;
                let all: u32 = E1000_CAUSES.iter().sum();
                wr32(s, step, r, E1000_IMS, all)?;
                let mut counts = Vec::new();
                for (k, cause) in E1000_CAUSES.iter().enumerate() {
                    wr32(s, step, r, E1000_ICR, 0xffff_ffff)?;
                    wr32(s, step, r, E1000_ICS, *cause)?;
                    let n = s.wait_eventfd(step, fds[k], 3000);
                    if n == 0 {
                        return Err(anyhow!(
                            "no MSI-X on vector {k} (cause {cause:#x}) within 3 s"
                        ));
                    }
                    counts.push(n);
                }
                Ok(format!(
                    "{} MSI-X vectors delivered (counts {counts:?})",
                    counts.len()
                ))
            })();
            // Mask, let the throttle timer drain (QEMU 7.2 aborts otherwise),
            // then the disable.
            let _ = wr32(s, step, r, E1000_IMC, 0xffff_ffff);
            sleep(Duration::from_millis(100));
            res
        },
    )
}

/// One edu interrupt on an MSI vector already bound to `fd` (the churn's
/// MSI round): raise it, wait up to `ms` for the eventfd, ack. Returns the
/// eventfd count (0: none arrived).
pub fn edu_irq_once(s: &mut Session, step: &str, fd: i32, ms: i32) -> Result<u64> {
    let r = bar0(s, false)?;
    wr32(s, step, r, EDU_IRQ_RAISE, 1)?;
    let n = s.wait_eventfd(step, fd, ms);
    let status = rd32(s, step, r, EDU_IRQ_STATUS, true)?;
    wr32(s, step, r, EDU_IRQ_ACK, status)?;
    Ok(n)
}
