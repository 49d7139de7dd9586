//! Reading the guest console: /init's markers, the exerciser's step lines,
//! and kernel trouble (panics, oopses, BUG/WARN, RCU stalls, lockups).

/// The line /init prints last: `LAB-RESULT: PASS` or `LAB-RESULT: FAIL why`.
pub const RESULT_MARKER: &str = "LAB-RESULT:";
/// Progress lines from /init (echoed live by the xtask).
pub const PROGRESS_MARKER: &str = "LAB:";

#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub kind: &'static str,
    pub line: usize,
    pub excerpt: String,
}

/// Strips the `[    1.234567] ` printk timestamp and a trailing CR.
pub fn strip(line: &str) -> &str {
    let l = line.trim_end_matches('\r');
    if let Some(rest) = l.strip_prefix('[') {
        if let Some(i) = rest.find("] ") {
            if rest[..i]
                .trim()
                .chars()
                .all(|c| c.is_ascii_digit() || c == '.')
            {
                return &rest[i + 2..];
            }
        }
    }
    l
}

fn classify(l: &str) -> Option<&'static str> {
    if l.starts_with("Kernel panic") {
        Some("kernel panic")
    } else if l.contains("BUG: soft lockup") || l.contains("BUG: hard lockup") {
        Some("lockup")
    } else if l.starts_with("Oops:")
        || l.contains("] Oops:")
        || l.starts_with("Internal error: Oops")
    {
        Some("oops")
    } else if l.starts_with("BUG: ") || l.starts_with("kernel BUG at") {
        Some("BUG")
    } else if l.starts_with("general protection fault") {
        Some("oops")
    } else if l.starts_with("WARNING: CPU:") || l.starts_with("WARNING: at ") {
        Some("WARNING")
    } else if l.starts_with("rcu: INFO:")
        || l.contains("self-detected stall")
        || l.contains("detected stalls on CPUs")
    {
        Some("RCU stall")
    } else if l.starts_with("INFO: task ") && l.contains("blocked for more than") {
        Some("hung task")
    } else {
        None
    }
}

/// Every kernel problem in the console, with up to 12 following lines.
pub fn problems(text: &str) -> Vec<Problem> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out: Vec<Problem> = Vec::new();
    for (i, raw) in lines.iter().enumerate() {
        let l = strip(raw);
        let Some(kind) = classify(l) else { continue };
        // One report per burst: a panic right after an oops is the same event.
        let follow_up = matches!(kind, "oops" | "BUG");
        if follow_up
            && out
                .last()
                .is_some_and(|p| i < p.line + 12 && matches!(p.kind, "oops" | "BUG" | "WARNING"))
        {
            continue;
        }
        let excerpt = lines[i..lines.len().min(i + 12)]
            .iter()
            .map(|l| strip(l))
            .collect::<Vec<_>>()
            .join("\n");
        out.push(Problem {
            kind,
            line: i + 1,
            excerpt,
        });
    }
    out
}

/// The last `LAB-RESULT:` line: (passed, rest of the line).
pub fn result(text: &str) -> Option<(bool, String)> {
    text.lines().rev().map(strip).find_map(|l| {
        let rest = l.strip_prefix(RESULT_MARKER)?.trim();
        if let Some(r) = rest.strip_prefix("PASS") {
            Some((true, r.trim().to_string()))
        } else {
            Some((
                false,
                rest.strip_prefix("FAIL").unwrap_or(rest).trim().to_string(),
            ))
        }
    })
}

/// `EXERCISER STEP name PASS|FAIL detail` lines, prefixed by the VM level
/// they came from when /init relays a nested guest's console.
#[derive(Debug, Clone, PartialEq)]
pub struct StepLine {
    pub name: String,
    pub pass: bool,
    pub detail: String,
}

pub fn steps(text: &str) -> Vec<StepLine> {
    text.lines()
        .map(strip)
        .filter_map(|l| {
            let i = l.find("EXERCISER STEP ")?;
            let mut it = l[i + 15..].splitn(3, ' ');
            let name = it.next()?.to_string();
            let pass = match it.next()? {
                "PASS" => true,
                "FAIL" => false,
                _ => return None,
            };
            Some(StepLine {
                name,
                pass,
                detail: it.next().unwrap_or("").to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
[    0.000000] Linux version 6.12.95+deb12-amd64
[    2.100000] virtio_iommu virtio0: input address: 39 bits
LAB: init at 2.3s
EXERCISER STEP setup PASS container ready
EXERCISER STEP map_dma PASS mapped 0x100000+0x10000 0x200000+0x10000
EXERCISER STEP fault_map_overlap FAIL MAP_DMA overlapping buffer A: expected EEXIST, got ret 0
LAB-RESULT: PASS\r
[    5.0] reboot: Power down
";

    const OOPS: &str = "\
LAB: init at 2.3s
[    3.161840] BUG: kernel NULL pointer dereference, address: 0000000000000008
[    3.162000] #PF: supervisor read access in kernel mode
[    3.162100] Oops: Oops: 0000 [#1] PREEMPT SMP NOPTI
[    3.162200] CPU: 0 UID: 0 PID: 1 Comm: exerciser
[    3.162300] RIP: 0010:viommu_map_pages+0x2a/0x1f0 [virtio_iommu]
[    9.000000] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:
[   20.000000] Kernel panic - not syncing: Fatal exception
";

    #[test]
    fn clean_console_has_no_problems_and_a_pass() {
        assert!(problems(GOOD).is_empty());
        assert_eq!(result(GOOD), Some((true, String::new())));
        let s = steps(GOOD);
        assert_eq!(s.len(), 3);
        assert!(s[0].pass && s[0].name == "setup");
        assert!(!s[2].pass && s[2].detail.contains("EEXIST"));
    }

    #[test]
    fn oops_stall_and_panic_are_reported_with_excerpts() {
        let p = problems(OOPS);
        let kinds: Vec<_> = p.iter().map(|p| p.kind).collect();
        assert_eq!(kinds, ["BUG", "RCU stall", "kernel panic"]);
        assert_eq!(p[0].line, 2);
        assert!(p[0].excerpt.contains("viommu_map_pages"));
        assert_eq!(result(OOPS), None);
    }

    #[test]
    fn warnings_and_failures() {
        let t = "[ 1.0] WARNING: CPU: 1 PID: 77 at drivers/iommu/iommu.c:2400 __iommu_map+0x1/0x2\nLAB-RESULT: FAIL no edu\n";
        assert_eq!(problems(t)[0].kind, "WARNING");
        assert_eq!(result(t), Some((false, "no edu".into())));
        assert_eq!(strip("[   12.5] rcu: INFO: x"), "rcu: INFO: x");
        assert_eq!(
            problems("[ 1.0] watchdog: BUG: soft lockup - CPU#0 stuck for 22s!")[0].kind,
            "lockup"
        );
    }
}
