//! The command line. Command names, flags and exit codes are contracts users
//! script against: add freely, rename never (documented in the README).

use std::{path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "vfio-trace",
    version,
    about = "Trace VFIO, IOMMU, MSI doorbell and virtio-iommu activity; rebuild IOVA→GPA→HVA→HPA chains",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// `live` options when no subcommand is given.
    #[command(flatten)]
    pub live: LiveArgs,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Trace live and show the state (default).
    Live(LiveArgs),
    /// Record live events to a trace file.
    Record(RecordArgs),
    /// Open recorded trace files.
    Replay(ReplayArgs),
    /// Check live or recorded events against the doorbell and chain rules (CI).
    Check(CheckArgs),
    /// Convert trace files to JSON Lines or a Perfetto timeline.
    Export(ExportArgs),
    /// Run this machine's probes and stream events to an aggregator.
    Agent(AgentArgs),
    /// List every probe with its status on this kernel, hits and drops.
    Probes(ProbesArgs),
}

/// Options shared by every command that runs live probes.
#[derive(Args, Debug, Clone, Default)]
pub struct ProbeArgs {
    /// Name of this node in events (default: the hostname).
    #[arg(long, value_name = "NAME")]
    pub node: Option<String>,
    /// Trace only this process.
    #[arg(long, value_name = "PID")]
    pub pid: Option<u32>,
    /// A probe that must attach (repeatable); others are skipped with a reason.
    #[arg(long = "probe", value_name = "NAME")]
    pub probes: Vec<String>,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// Remote agents: `--listen` for live/record (aggregator side), `--token`
/// for both sides.
#[derive(Args, Debug, Clone, Default)]
pub struct RemoteArgs {
    /// Accept agents on ADDR besides the local probes (repeatable; live,
    /// record): tcp:PORT (loopback), tcp:HOST:PORT, unix:PATH, vsock:PORT.
    #[arg(long = "listen", value_name = "ADDR")]
    pub listen: Vec<String>,
    /// With --listen: no local probes, only agents (needs no root).
    #[arg(long)]
    pub no_local: bool,
    /// Shared token, required over TCP (default: $VFIO_TRACE_TOKEN).
    #[arg(long, value_name = "T")]
    pub token: Option<String>,
}

#[derive(Args, Debug, Clone, Default)]
pub struct LiveArgs {
    #[command(flatten)]
    pub probe: ProbeArgs,
    /// Print events and findings as text instead of the terminal UI.
    #[arg(long)]
    pub no_tui: bool,
    /// Stop after this long (e.g. 500ms, 5s, 2m).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
}

#[derive(Args, Debug)]
pub struct RecordArgs {
    #[command(flatten)]
    pub probe: ProbeArgs,
    /// Trace file to write.
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// Stop after this long (e.g. 500ms, 5s, 2m).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// No status line on stderr.
    #[arg(short, long)]
    pub quiet: bool,
    /// Run this command and record until it exits (after `--`).
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ReplayArgs {
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Print events as text instead of opening the terminal UI.
    #[arg(long)]
    pub print: bool,
    /// Read what can be read from damaged files (warns with the offset).
    #[arg(long)]
    pub salvage: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportFormat {
    Text,
    Json,
    Junit,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    pub probe: ProbeArgs,
    /// Recorded trace files to check (none: check live).
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Live: check for this long.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    #[arg(long, value_enum, default_value = "text")]
    pub format: ReportFormat,
    /// Only these rules (id or name; repeatable).
    #[arg(long = "rule", value_name = "RULE")]
    pub rules: Vec<String>,
    /// Suppress these rules (id or name; repeatable).
    #[arg(long = "allow", value_name = "RULE")]
    pub allow: Vec<String>,
    /// Force a guest/host pairing: `guest-node:BDF=host-BDF` (repeatable).
    #[arg(long = "pair", value_name = "PAIR")]
    pub pairs: Vec<String>,
    /// Read what can be read from damaged files.
    #[arg(long)]
    pub salvage: bool,
    /// Live: trace while this command runs (after `--`).
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    Jsonl,
    Perfetto,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    #[arg(long, value_enum, default_value = "jsonl")]
    pub format: ExportFormat,
    /// Write here instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Read what can be read from damaged files.
    #[arg(long)]
    pub salvage: bool,
}

#[derive(Args, Debug)]
pub struct AgentArgs {
    #[command(flatten)]
    pub probe: ProbeArgs,
    /// Aggregator address: vsock:CID:PORT, tcp:HOST:PORT, unix:PATH, serial:/dev/vportNpM.
    #[arg(long, value_name = "ADDR")]
    pub connect: String,
    /// Stop after this long (e.g. 500ms, 5s, 2m).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Most MiB buffered for the aggregator (while disconnected or slow);
    /// beyond it new events are dropped and counted.
    #[arg(long, value_name = "MIB", default_value_t = 64)]
    pub buffer_mib: usize,
    /// Testing: send N synthetic events a second (0: as fast as possible)
    /// instead of running the probes.
    #[arg(long, value_name = "N", hide = true)]
    pub synthetic: Option<u64>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListFormat {
    Text,
    Json,
}

#[derive(Args, Debug)]
pub struct ProbesArgs {
    #[command(flatten)]
    pub probe: ProbeArgs,
    #[arg(long, value_enum, default_value = "text")]
    pub format: ListFormat,
    /// Attach nothing: list BPF programs and kprobe events of vfio-trace
    /// still in the kernel (after it stopped there must be none); exit 1 if
    /// any.
    #[arg(long)]
    pub leftovers: bool,
}

/// `500ms`, `5s`, `2m`, `1h`, or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("bad duration {s:?}: expected e.g. 500ms, 5s, 2m"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => {
            return Err(format!(
                "bad duration unit {unit:?} in {s:?}: use ms, s, m or h"
            ))
        }
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("bad duration {s:?}"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn no_subcommand_means_live() {
        let cli = Cli::try_parse_from(["vfio-trace", "--no-tui", "--duration", "1s"]).unwrap();
        assert!(cli.command.is_none());
        assert!(cli.live.no_tui);
    }
}
