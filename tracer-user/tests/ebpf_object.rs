//! The string seams between the loader and the probes, checked on the built
//! eBPF object (the bytes `vfio-trace` embeds, from `build.rs` via OUT_DIR),
//! without root: every program the attach table names exists with the
//! program type its attach point needs, every program in the object is in
//! the table, every read-only global the loader sets exists with the size
//! the loader writes (through aya's own `patch_map_data`, as
//! `EbpfLoader::override_global(.., true)` does at load), and every map the
//! loader opens by name exists. A misspelt name otherwise shows only at run
//! time, as a probe that never attaches or a load that fails.

use std::collections::{BTreeSet, HashMap};

use aya_obj::{Object, ProgramSection};

/// The attach table itself, compiled into this test (the binary crate has no
/// library to import it from).
#[allow(dead_code)]
#[path = "../src/probes/table.rs"]
mod table;

use table::Attach;

static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tracer.bpf.o"));

fn object() -> Object {
    Object::parse(OBJECT).expect("the embedded eBPF object parses")
}

fn kind(section: &ProgramSection) -> &'static str {
    match section {
        ProgramSection::KProbe => "kprobe",
        ProgramSection::KRetProbe => "kretprobe",
        ProgramSection::TracePoint => "tracepoint",
        ProgramSection::FExit { .. } => "fexit",
        _ => "other",
    }
}

#[test]
fn every_table_program_is_in_the_object_with_its_program_type() {
    let obj = object();
    let mut wrong = Vec::new();
    for spec in table::all() {
        let want = match spec.attach {
            Attach::Tracepoint { .. } => "tracepoint",
            Attach::Kprobe { .. } => "kprobe",
            Attach::Kretprobe { .. } => "kretprobe",
        };
        let programs = [(spec.program, want)]
            .into_iter()
            .chain(spec.fexit.map(|f| (f, "fexit")));
        for (program, want) in programs {
            match obj.programs.get(program) {
                None => wrong.push(format!(
                    "probe {}: program {program} is not in the eBPF object",
                    spec.name
                )),
                Some(p) if kind(&p.section) != want => wrong.push(format!(
                    "probe {}: program {program} is a {} program, the table attaches it as {want}",
                    spec.name,
                    kind(&p.section)
                )),
                Some(_) => {}
            }
        }
    }
    let mut in_object: Vec<_> = obj.programs.keys().cloned().collect();
    in_object.sort();
    assert!(
        wrong.is_empty(),
        "{}\n(programs in the object: {})",
        wrong.join("\n"),
        in_object.join(", ")
    );
}

#[test]
fn every_program_in_the_object_is_in_the_table() {
    let obj = object();
    let named: BTreeSet<&str> = table::all()
        .flat_map(|s| [Some(s.program), s.fexit])
        .flatten()
        .collect();
    let mut unused: Vec<_> = obj
        .programs
        .keys()
        .filter(|p| !named.contains(p.as_str()))
        .collect();
    unused.sort();
    assert!(
        unused.is_empty(),
        "programs no table entry attaches: {unused:?}"
    );
}

#[test]
fn every_global_the_loader_sets_is_in_the_object() {
    let names: Vec<&str> = [table::TARGET_TGID]
        .into_iter()
        .chain(table::VMLINUX_OFFSETS.iter().map(|(g, _, _)| *g))
        .chain(table::VMLINUX_BITS.iter().map(|(g, _, _)| *g))
        .chain(table::VMLINUX_ENUMS.iter().map(|(g, _)| *g))
        .collect();
    assert!(names.len() > 20, "the loader's globals: {names:?}");
    // The loader writes a u32 into each, refusing a missing one
    // (`must_exist`): the same call on the parsed object.
    let value = 0u32.to_ne_bytes();
    let mut missing = Vec::new();
    for name in &names {
        let mut obj = object();
        let globals = HashMap::from([(*name, (&value[..], true))]);
        if let Err(e) = obj.patch_map_data(globals) {
            missing.push(format!("{name}: {e}"));
        }
    }
    assert!(
        missing.is_empty(),
        "globals the loader sets that the eBPF object lacks:\n{}",
        missing.join("\n")
    );
}

#[test]
fn every_map_the_loader_opens_is_in_the_object() {
    let obj = object();
    let missing: Vec<_> = [
        table::MAP_EVENTS,
        table::MAP_HITS,
        table::MAP_DROPS,
        table::MAP_MOD_OFFSETS,
    ]
    .into_iter()
    .filter(|m| !obj.maps.contains_key(*m))
    .collect();
    let mut maps: Vec<_> = obj.maps.keys().cloned().collect();
    maps.sort();
    assert!(
        missing.is_empty(),
        "maps the loader opens that the eBPF object lacks: {missing:?} (maps: {maps:?})"
    );
}
