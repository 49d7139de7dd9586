//! `vfio-trace check`: the engine's rules over recorded files or a live
//! run, as a report for CI. Exit 0 clean, 1 findings, 2 could not check
//! (or incomplete: drops, a required probe missing, no events).

use std::process::ExitCode;

use anyhow::{Context, Result};
use tracer_core::{
    check::{self, CheckOptions, Coverage, Report},
    event::{Event, NodeInfo},
};

use super::{
    files::read_all_events,
    session::{runtime, Session, StopWhen},
};
use crate::{
    cli::{CheckArgs, ReportFormat},
    net::aggregator::Notice,
};

pub fn run(args: CheckArgs) -> Result<ExitCode> {
    let opts = CheckOptions {
        rules: CheckOptions::parse_rules(&args.rules)?,
        allow: CheckOptions::parse_rules(&args.allow)?,
        forced_pairs: CheckOptions::parse_pairs(&args.pairs)?,
        require_all_rules: args.require_all_rules,
        ..Default::default()
    };
    // What was read is checked and reported; whatever was not (damage, a
    // file cut short, a lost agent) makes the verdict incomplete.
    let (events, nodes, coverage) = if args.files.is_empty() {
        let (events, nodes, lost_streams) = runtime()?.block_on(collect_live(&args))?;
        let coverage = Coverage {
            lost_streams,
            ..Default::default()
        };
        (events, nodes, coverage)
    } else {
        if args.observe.metrics.is_some() {
            anyhow::bail!(
                "--metrics serves a live check (no FILE): a check of files ends before anything could scrape it"
            );
        }
        // Opened before reading: a bad path fails first.
        let log = args
            .observe
            .findings
            .as_deref()
            .map(crate::findings_log::FindingsLog::open)
            .transpose()?;
        let (events, nodes, read) = read_all_events(&args.files, args.salvage)?;
        let coverage = Coverage::from_read(&read);
        let report = check::run_covered(&events, &nodes, &opts, &coverage);
        if let Some(mut log) = log {
            let now = std::time::SystemTime::now();
            for f in &report.findings {
                log.append(f, "report", now)?;
            }
        }
        print_report(&report, args.format);
        return Ok(ExitCode::from(
            u8::try_from(report.exit_code()).unwrap_or(super::EXIT_CANNOT),
        ));
    };
    let report = check::run_covered(&events, &nodes, &opts, &coverage);
    print_report(&report, args.format);
    Ok(ExitCode::from(
        u8::try_from(report.exit_code()).unwrap_or(super::EXIT_CANNOT),
    ))
}

fn print_report(report: &Report, format: ReportFormat) {
    match format {
        ReportFormat::Text => print!("{}", report.to_text()),
        ReportFormat::Json => println!("{}", report.to_json()),
        ReportFormat::Junit => print!("{}", report.to_junit()),
    }
}

/// What was collected live: the events, the nodes (this machine and every
/// agent that joined), and why agents' streams are incomplete.
type Live = (Vec<Event>, Vec<NodeInfo>, Vec<String>);

/// Traces live (local probes and/or agents with `--listen`) until the
/// duration passes, the command exits, or a signal.
async fn collect_live(args: &CheckArgs) -> Result<Live> {
    let mut session = Session::start_observed(&args.probe, &args.observe.config())?;
    let mut notices = session.take_notices();
    let mut stop = StopWhen::new(args.duration, &args.command)?;
    eprintln!("vfio-trace: checking live (Ctrl-C to stop)");
    let stopping = stop.wait();
    tokio::pin!(stopping);
    let mut stopped = false;
    let mut events = Vec::new();
    let mut lost = Vec::new();
    loop {
        tokio::select! {
            batch = session.events.recv() => match batch {
                Some(b) => events.extend(b),
                None => break,
            },
            Some(n) = async { notices.as_mut()?.recv().await }, if notices.is_some() => {
                eprintln!("vfio-trace: {n}");
                if let Some(why) = agent_loss(&n) {
                    lost.push(why);
                }
            }
            _ = &mut stopping, if !stopped => {
                stopped = true;
                session.request_stop();
            }
        }
    }
    if let Some(rx) = notices.as_mut() {
        while let Ok(n) = rx.try_recv() {
            eprintln!("vfio-trace: {n}");
            lost.extend(agent_loss(&n));
        }
    }
    let nodes = session.nodes();
    session.finish().await.context("stopping the probes")?;
    Ok((events, nodes, lost))
}

/// An agent's notice that means events are missing from the check.
fn agent_loss(n: &Notice) -> Option<String> {
    match n {
        Notice::Left { clean: false, .. } => Some(n.to_string()),
        Notice::AgentDrops {
            dropped,
            lost,
            missing_batches,
            ..
        } if dropped + lost + missing_batches > 0 => Some(n.to_string()),
        _ => None,
    }
}
