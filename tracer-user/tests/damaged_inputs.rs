//! A mutation run over the committed examples through the real binary:
//! truncations, byte flips and zeroed blocks of one file, alone and merged
//! with the intact other, strict and `--salvage`. `check` never says
//! `clean` (exit 0, `complete: true`, no JUnit error) about damaged input,
//! `export` never loses an event of the intact file, and nothing panics.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_vfio-trace");

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name)
}

/// A small deterministic generator (xorshift), so a failure names its case.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn run(args: &[&str], files: &[&Path]) -> (Option<i32>, String, String) {
    let out = Command::new(BIN).args(args).args(files).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !stderr.contains("panicked") && out.status.code() != Some(101),
        "{args:?} {files:?} panicked: {stderr}"
    );
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
    )
}

fn node_events(jsonl: &str, node: &str) -> usize {
    jsonl
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["node"] == node)
        .count()
}

#[test]
fn no_damaged_input_is_ever_clean_and_no_intact_event_is_lost() {
    let dir = std::env::temp_dir().join(format!("vfio-trace-damage-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let files = [
        (
            "nested-l1-host.vtrace",
            "l1",
            "nested-l2-guest.vtrace",
            "l2",
        ),
        (
            "nested-l2-guest.vtrace",
            "l2",
            "nested-l1-host.vtrace",
            "l1",
        ),
    ];
    // The intact files' event counts per node, as exported.
    let (code, all, _) = run(
        &["export", "--format", "jsonl"],
        &[&example(files[0].0), &example(files[0].2)],
    );
    assert_eq!(code, Some(0));
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut cases = 0;
    for case in 0..24 {
        let (victim, _, other, other_node) = files[case % 2];
        let original = std::fs::read(example(victim)).unwrap();
        let mut bytes = original.clone();
        let what = match rng.below(3) {
            0 => {
                let at = rng.below(bytes.len());
                bytes.truncate(at);
                format!("truncated at {at}")
            }
            1 => {
                let at = rng.below(bytes.len());
                bytes[at] ^= 1 << rng.below(8);
                format!("bit flipped at {at}")
            }
            _ => {
                let at = rng.below(bytes.len());
                let end = (at + 1 + rng.below(512)).min(bytes.len());
                bytes[at..end].fill(0);
                format!("zeroed {at}..{end}")
            }
        };
        if bytes == original {
            continue;
        }
        cases += 1;
        let bad = dir.join(format!("case{case}.vtrace"));
        std::fs::write(&bad, &bytes).unwrap();
        let intact = example(other);
        for salvage in [false, true] {
            let mut args = vec!["check", "--format", "json"];
            if salvage {
                args.push("--salvage");
            }
            for inputs in [vec![bad.as_path()], vec![bad.as_path(), intact.as_path()]] {
                let (code, out, err) = run(&args, &inputs);
                let ctx = format!("case {case} ({victim} {what}) {args:?} {inputs:?}: {err}");
                assert_ne!(code, Some(0), "{ctx}");
                if let Ok(report) = serde_json::from_str::<Value>(&out) {
                    assert_eq!(report["summary"]["complete"], false, "{ctx}");
                    assert_ne!(report["summary"]["verdict"], "clean", "{ctx}");
                    let named = report["summary"]["incomplete_reasons"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|r| r.as_str().unwrap().contains(&format!("case{case}.vtrace")));
                    assert!(named, "the damaged file is named: {ctx}");
                } else {
                    // No report at all: the command could not run (exit 2).
                    assert_eq!(code, Some(2), "{ctx}");
                }
                let mut junit_args = args.clone();
                junit_args[2] = "junit";
                let (_, junit, _) = run(&junit_args, &inputs);
                assert!(
                    junit.is_empty() || junit.contains("<error type=\"incomplete\""),
                    "{ctx}: {junit}"
                );
                let mut text_args = args.clone();
                text_args[2] = "text";
                let (_, text, _) = run(&text_args, &inputs);
                assert!(!text.contains("verdict: clean"), "{ctx}: {text}");
            }
            let mut export = vec!["export", "--format", "jsonl"];
            if salvage {
                export.push("--salvage");
            }
            let (_, out, err) = run(&export, &[&bad, &intact]);
            assert_eq!(
                node_events(&out, other_node),
                node_events(&all, other_node),
                "case {case} ({victim} {what}): export lost events of the intact {other}: {err}"
            );
        }
    }
    assert!(cases >= 20, "only {cases} cases changed a byte");
    let _ = std::fs::remove_dir_all(&dir);
}
