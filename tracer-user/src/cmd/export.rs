//! `vfio-trace export FILE... --format jsonl|perfetto`.

use std::{
    io::{BufWriter, Write},
    process::ExitCode,
};

use anyhow::Result;
use tracer_core::{
    engine::{Engine, EngineConfig},
    event::{Event, NodeInfo},
    export::{
        jsonl::JsonlWriter,
        perfetto::{Evidence, Finding, PerfettoWriter},
    },
    tracefile::aligned_ns,
};

use super::files::{for_each_event, read_all_events, read_exit};
use super::output::{self, Kind, Output};
use crate::cli::{ExportArgs, ExportFormat};

pub fn run(args: ExportArgs) -> Result<ExitCode> {
    let output = match &args.output {
        Some(p) => Some(Output::create(p, &args.files, args.force, Kind::Whole)?),
        None => {
            output::check_stdout(&args.files)?;
            None
        }
    };
    let out: Box<dyn Write> = match &output {
        Some(o) => Box::new(o.named_writer()?),
        None => Box::new(std::io::stdout().lock()),
    };
    let out = BufWriter::new(out);
    let read = match args.format {
        ExportFormat::Jsonl => {
            let mut w = JsonlWriter::new(out);
            let read = for_each_event(&args.files, args.salvage, |ev, nodes| {
                Ok(w.write_event(ev, nodes)?)
            })?;
            w.finish()?.flush()?;
            read
        }
        ExportFormat::Perfetto => {
            // Findings need the whole stream, so the events are kept.
            let (events, nodes, read) = read_all_events(&args.files, args.salvage)?;
            // In aligned-time order, so event ids are the engine's.
            let order = in_order(&events, &nodes);
            let mut w = PerfettoWriter::new(out)?;
            for ev in &order {
                w.write_event(ev, &nodes)?;
            }
            for f in findings(&order, &nodes) {
                w.add_finding(&f, &nodes)?;
            }
            w.finish()?.flush()?;
            read
        }
    };
    if let Some(o) = output {
        o.commit()?;
    }
    // Everything read is in the output; a damaged input still fails.
    Ok(read_exit(&read))
}

/// The events in aligned-time order (stable).
fn in_order<'a>(events: &'a [Event], nodes: &[NodeInfo]) -> Vec<&'a Event> {
    let mut order: Vec<&Event> = events.iter().collect();
    order.sort_by_key(|e| aligned_ns(e, nodes));
    order
}

/// The engine's findings as timeline instants, at their newest evidence;
/// `order` is [`in_order`]'s, whose indexes are the event ids.
fn findings(order: &[&Event], nodes: &[NodeInfo]) -> Vec<Finding> {
    let mut engine = Engine::new(nodes.to_vec(), EngineConfig::default());
    engine.apply_all(order);
    engine
        .findings()
        .into_iter()
        .filter_map(|f| {
            let at = order.get(usize::try_from(f.at).ok()?)?;
            Some(Finding {
                ts_ns: at.ts_ns,
                node: f.node.unwrap_or(at.node),
                title: format!("{} {}", f.rule.id(), f.rule.name()),
                detail: match f.address {
                    Some((a, b)) => format!("{} [address {a:#x}-{b:#x}]", f.message),
                    None => f.message.clone(),
                },
                evidence: f
                    .evidence
                    .iter()
                    .filter_map(|&id| {
                        let ev = order.get(usize::try_from(id).ok()?)?;
                        Some(Evidence::of(id, ev))
                    })
                    .collect(),
            })
        })
        .collect()
}
