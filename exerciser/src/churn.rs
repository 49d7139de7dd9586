//! `--churn SECS`: the soak's workload (`cargo xtask soak`). Round after
//! round, until SECS pass or SIGINT/SIGTERM (SECS 0: until a signal):
//!
//! - MAP_DMA 1-4 mappings of 1-32 pages each, laid end to end from a
//!   varying IOVA (16 MiB-216 MiB, inside edu's 28-bit DMA mask, far from
//!   the clean steps' buffers and the MSI window), each from a varying
//!   offset of one 1 MiB buffer;
//! - UNMAP_DMA them, one by one (the written-back size must be each
//!   mapping's) or, every third round, with one UNMAP_DMA over the whole
//!   span (the size must be their sum);
//! - edu MSI enabled with a fresh eventfd, one interrupt raised by the
//!   device and read from the eventfd, the vector moved to a second fresh
//!   eventfd, a SET_IRQS loopback trigger (DATA_NONE) read from that one,
//!   MSI disabled, both eventfds closed.
//!
//! Only the setup is journaled call by call (a soak's journal would
//! otherwise grow without bound); the loop journals a `churn` record with
//! its counters every 10 s and a `summary` at the end, and prints an
//! `EXERCISER CHURN` line each time.

use anyhow::{anyhow, Result};
use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use serde_json::json;

use crate::{
    journal::{self, Journal},
    session::{errno_str, Session},
    vfio::VFIO_PCI_MSI_IRQ_INDEX,
};

const STEP: &str = "churn";
const PAGE: u64 = 0x1000;
/// The buffer every mapping's HVA comes from.
const POOL_PAGES: u64 = 256;
/// IOVAs: from 16 MiB, 1 MiB-aligned bases plus up to 15 pages.
const IOVA_BASE: u64 = 0x100_0000;
const IOVA_SLOTS: u64 = 200;
const PROGRESS_EVERY: Duration = Duration::from_secs(10);
/// After this many failed rounds the churn gives up (a broken setup would
/// otherwise spin for the whole soak).
const MAX_ERRORS: u64 = 100;

pub struct Opts {
    /// Seconds to run; 0: until SIGINT/SIGTERM.
    pub secs: u64,
    /// Pause between rounds.
    pub pause_ms: u64,
    pub seed: u64,
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// xorshift64*: the same rounds for the same seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform enough in lo..=hi.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

#[derive(Default)]
struct Counters {
    rounds: u64,
    maps: u64,
    unmaps: u64,
    mapped_bytes: u64,
    msi_irqs: u64,
    triggers: u64,
    errors: u64,
    first_error: Option<String>,
}

impl Counters {
    fn json(&self, kind: &str, elapsed_s: f64) -> serde_json::Value {
        json!({
            "type": kind, "step": STEP, "elapsed_s": elapsed_s,
            "rounds": self.rounds, "maps": self.maps, "unmaps": self.unmaps,
            "mapped_bytes": self.mapped_bytes, "msi_irqs": self.msi_irqs,
            "triggers": self.triggers, "errors": self.errors,
            "first_error": self.first_error, "t_ns": journal::monotonic_ns(),
        })
    }
    fn line(&self, elapsed_s: f64) -> String {
        format!(
            "t={elapsed_s:.0} rounds={} maps={} unmaps={} mapped_bytes={} msi_irqs={} triggers={} errors={}",
            self.rounds,
            self.maps,
            self.unmaps,
            self.mapped_bytes,
            self.msi_irqs,
            self.triggers,
            self.errors
        )
    }
}

pub fn run(s: &mut Session, o: &Opts) -> bool {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        let h: extern "C" fn(libc::c_int) = on_signal;
        // SAFETY: the handler only stores to an atomic.
        unsafe { libc::signal(sig, h as libc::sighandler_t) };
    }
    let setup = (|| {
        s.ensure_iommu()?;
        s.ensure_edu()?;
        s.alloc_buf((POOL_PAGES * PAGE) as usize, IOVA_BASE)
    })();
    let pool = match setup {
        Ok(i) => s.bufs[i].ptr as u64,
        Err(e) => {
            println!("EXERCISER RESULT FAIL churn setup: {e:#}");
            return false;
        }
    };
    let dev = s.edu.as_ref().map(|d| d.fd).unwrap_or(-1);
    // The loop's calls are not journaled one by one (see the module doc).
    let mut j = std::mem::replace(&mut s.j, Journal::new(None));
    let mut c = Counters::default();
    let mut rng = Rng(o.seed.max(1));
    let start = Instant::now();
    let mut next_progress = PROGRESS_EVERY;
    println!(
        "EXERCISER CHURN start secs={} pause_ms={} seed={}",
        o.secs, o.pause_ms, o.seed
    );
    let deadline = (o.secs > 0).then(|| Duration::from_secs(o.secs));
    while !STOP.load(Ordering::Relaxed) && deadline.is_none_or(|d| start.elapsed() < d) {
        let r = round(s, &mut c, &mut rng, pool, dev);
        c.rounds += 1;
        if let Err(e) = r {
            c.errors += 1;
            if c.errors <= 5 {
                println!("EXERCISER CHURN error round={} {e:#}", c.rounds);
            }
            c.first_error.get_or_insert_with(|| format!("{e:#}"));
            if c.errors >= MAX_ERRORS {
                println!("EXERCISER CHURN giving up after {MAX_ERRORS} failed rounds");
                break;
            }
        }
        if start.elapsed() >= next_progress {
            next_progress += PROGRESS_EVERY;
            let t = start.elapsed().as_secs_f64();
            println!("EXERCISER CHURN {}", c.line(t));
            j.write(c.json("churn", t));
        }
        pause(o.pause_ms);
    }
    let t = start.elapsed().as_secs_f64();
    s.j = j;
    let ok = c.errors == 0 && c.rounds > 0;
    let mut sum = c.json("summary", t);
    sum["pass"] = json!(ok);
    sum["stopped_by"] = json!(if STOP.load(Ordering::Relaxed) {
        "signal"
    } else {
        "duration"
    });
    s.j.write(sum);
    println!("EXERCISER CHURN end {}", c.line(t));
    println!(
        "EXERCISER RESULT {} churn {} rounds, {} errors{}",
        if ok { "PASS" } else { "FAIL" },
        c.rounds,
        c.errors,
        c.first_error
            .as_deref()
            .map(|e| format!(" (first: {e})"))
            .unwrap_or_default()
    );
    ok
}

fn pause(ms: u64) {
    let until = Instant::now() + Duration::from_millis(ms);
    while !STOP.load(Ordering::Relaxed) {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        std::thread::sleep(left.min(Duration::from_millis(100)));
    }
}

/// One MAP/UNMAP round and one MSI round.
fn round(s: &mut Session, c: &mut Counters, rng: &mut Rng, pool: u64, dev: i32) -> Result<()> {
    let maps = map_unmap(s, c, rng, pool);
    let msi = msi(s, c, dev);
    maps.and(msi)
}

fn map_unmap(s: &mut Session, c: &mut Counters, rng: &mut Rng, pool: u64) -> Result<()> {
    let n = rng.range(1, 4);
    let start = IOVA_BASE + rng.range(0, IOVA_SLOTS - 1) * 0x10_0000 + rng.range(0, 15) * PAGE;
    let mut mapped: Vec<(u64, u64)> = Vec::new();
    let mut iova = start;
    let mut err = None;
    for _ in 0..n {
        let pages = rng.range(1, 32);
        let size = pages * PAGE;
        let vaddr = pool + rng.range(0, POOL_PAGES - pages) * PAGE;
        let t = s.map_dma(STEP, vaddr, iova, size);
        if !t.ok() {
            err = Some(anyhow!("MAP_DMA {iova:#x}+{size:#x}: {}", errno_str(&t)));
            break;
        }
        c.maps += 1;
        c.mapped_bytes += size;
        mapped.push((iova, size));
        iova += size;
    }
    let total: u64 = mapped.iter().map(|m| m.1).sum();
    if mapped.len() > 1 && (c.rounds.is_multiple_of(3) || err.is_some()) {
        // One UNMAP over the whole span (also the cleanup after a failure).
        let (t, got) = s.unmap_dma(STEP, start, total);
        c.unmaps += 1;
        if (!t.ok() || got != total) && err.is_none() {
            err = Some(anyhow!(
                "UNMAP_DMA span {start:#x}+{total:#x}: {} size {got:#x}",
                errno_str(&t)
            ));
        }
    } else {
        for &(iova, size) in mapped.iter().rev() {
            let (t, got) = s.unmap_dma(STEP, iova, size);
            c.unmaps += 1;
            if (!t.ok() || got != size) && err.is_none() {
                err = Some(anyhow!(
                    "UNMAP_DMA {iova:#x}+{size:#x}: {} size {got:#x}",
                    errno_str(&t)
                ));
            }
        }
    }
    err.map_or(Ok(()), Err)
}

fn msi(s: &mut Session, c: &mut Counters, dev: i32) -> Result<()> {
    let mut second = -1;
    let r = s.with_irqs(STEP, dev, VFIO_PCI_MSI_IRQ_INDEX, 1, |s, fds| {
        let n = crate::devices::edu_irq_once(s, STEP, fds[0], 3000)?;
        if n == 0 {
            return Err(anyhow!("no edu MSI on the eventfd within 3 s"));
        }
        c.msi_irqs += 1;
        // Move the vector to a fresh eventfd, then a loopback trigger.
        second = s.eventfd(STEP)?;
        let t = s.set_irqs(STEP, dev, VFIO_PCI_MSI_IRQ_INDEX, &[second]);
        if !t.ok() {
            return Err(anyhow!("SET_IRQS MSI new eventfd: {}", errno_str(&t)));
        }
        s.loopback_trigger(STEP, dev, VFIO_PCI_MSI_IRQ_INDEX, 0)?;
        let n = s.wait_eventfd(STEP, second, 1000);
        if n == 0 {
            return Err(anyhow!(
                "the loopback trigger did not signal the new eventfd"
            ));
        }
        c.triggers += 1;
        Ok(())
    });
    if second >= 0 {
        // SAFETY: our own eventfd, no longer bound (with_irqs disabled MSI).
        unsafe { libc::close(second) };
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_ranges_stay_inside() {
        let mut r = Rng(1);
        for _ in 0..10_000 {
            let v = r.range(1, 4);
            assert!((1..=4).contains(&v));
        }
        // The highest span stays below edu's 28-bit DMA mask and the MSI window.
        let top = IOVA_BASE + (IOVA_SLOTS - 1) * 0x10_0000 + 15 * PAGE + 4 * 32 * PAGE;
        assert!(top < 1 << 28);
    }
}
