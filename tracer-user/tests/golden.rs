//! The outputs of `export --format jsonl`, `export --format perfetto` and
//! `replay --print` on the committed sample traces (examples/) are
//! byte-identical to the fixtures in tests/golden/, which were generated
//! before the event kinds were restructured (issue 14). The JSON Lines form
//! is a user contract; the other two keep refactors honest.
//!
//! To regenerate after an intended output change:
//! `VFIO_TRACE_GOLDEN_UPDATE=1 cargo test -p tracer-user --test golden`.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

const BIN: &str = env!("CARGO_BIN_EXE_vfio-trace");

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Every `examples/*.vtrace`, sorted by name.
fn samples() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(examples_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "vtrace"))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no examples/*.vtrace");
    v
}

fn run(args: &[&str], files: &[PathBuf]) -> Vec<u8> {
    let out = Command::new(BIN).args(args).args(files).output().unwrap();
    assert!(
        out.status.success(),
        "vfio-trace {args:?} {files:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Compares `got` with the fixture `name`; writes it instead when
/// `VFIO_TRACE_GOLDEN_UPDATE` is set.
fn check(name: &str, got: &[u8]) {
    let path = golden_dir().join(name);
    if std::env::var_os("VFIO_TRACE_GOLDEN_UPDATE").is_some() {
        std::fs::create_dir_all(golden_dir()).unwrap();
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (VFIO_TRACE_GOLDEN_UPDATE=1 writes it)",
            path.display()
        )
    });
    if want != got {
        let (w, g) = (String::from_utf8_lossy(&want), String::from_utf8_lossy(got));
        let line = w
            .lines()
            .zip(g.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| w.lines().count().min(g.lines().count()));
        panic!(
            "{name} differs from {} at line {}:\n  want: {}\n  got:  {}",
            path.display(),
            line + 1,
            w.lines().nth(line).unwrap_or("<end>"),
            g.lines().nth(line).unwrap_or("<end>"),
        );
    }
}

fn stem(p: &Path) -> String {
    p.file_stem().unwrap().to_string_lossy().into_owned()
}

#[test]
fn jsonl_export_of_every_sample_is_unchanged() {
    for f in samples() {
        let got = run(&["export", "--format", "jsonl"], std::slice::from_ref(&f));
        check(&format!("{}.jsonl", stem(&f)), &got);
    }
}

#[test]
fn text_replay_of_every_sample_is_unchanged() {
    for f in samples() {
        let got = run(&["replay", "--print"], std::slice::from_ref(&f));
        check(&format!("{}.txt", stem(&f)), &got);
    }
}

/// All samples together: one timeline, with the findings of the pairing.
#[test]
fn perfetto_export_of_the_samples_is_unchanged() {
    check(
        "all.perfetto.json",
        &run(&["export", "--format", "perfetto"], &samples()),
    );
}
