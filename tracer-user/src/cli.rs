//! The command line. Command names, flags and exit codes are contracts users
//! script against: add freely, rename never (documented in the README).

use std::{path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};
use tracer_core::wire::{MAX_NAME_LEN, MAX_TOKEN_LEN};

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
    #[command(flatten)]
    pub term: TermArgs,
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
    /// Print a shell completion script to stdout (bash, zsh or fish).
    Completions(CompletionsArgs),
}

/// Options shared by every command that runs live probes.
#[derive(Args, Debug, Clone, Default)]
pub struct ProbeArgs {
    /// Name of this node in events (default: the hostname); 1 to 64 bytes,
    /// no whitespace.
    #[arg(long, value_name = "NAME", value_parser = parse_node_name)]
    pub node: Option<String>,
    /// Trace only this process.
    #[arg(long, value_name = "PID", value_parser = clap::value_parser!(u32).range(1..))]
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
    /// With --listen: most connections open at once (default 64); another
    /// is refused with a log line naming the peer.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub max_agents: Option<u32>,
    /// With --listen: drop an agent that sent no frame for this long after
    /// its hello (default 30s, at least 2s; agents send health every second).
    #[arg(long, value_name = "D", value_parser = parse_duration)]
    pub agent_timeout: Option<Duration>,
    /// With --listen: no local probes, only agents (needs no root).
    #[arg(long)]
    pub no_local: bool,
    /// Shared token, required over TCP (default: $VFIO_TRACE_TOKEN); at
    /// most 256 bytes.
    #[arg(long, value_name = "T", value_parser = parse_token)]
    pub token: Option<String>,
}

/// `--metrics` and `--findings` (live, record, check; with `--listen`, the
/// aggregator's view of every agent).
#[derive(Args, Debug, Clone, Default)]
pub struct ObserveArgs {
    /// Serve Prometheus metrics at http://ADDR/metrics: PORT (loopback),
    /// HOST:PORT or [IPv6]:PORT (another machine can reach it only when
    /// you name such an address, e.g. 0.0.0.0:9464).
    #[arg(long, value_name = "ADDR", value_parser = crate::metrics::server::parse_addr)]
    pub metrics: Option<std::net::SocketAddr>,
    /// Append each finding to FILE as one JSON line as it is raised
    /// (flushed per line, for log shippers).
    #[arg(long, value_name = "FILE")]
    pub findings: Option<PathBuf>,
}

impl ObserveArgs {
    pub fn config(&self) -> crate::metrics::ObserveConfig {
        crate::metrics::ObserveConfig {
            metrics: self.metrics,
            findings: self.findings.clone(),
        }
    }
}

#[derive(Args, Debug, Clone, Default)]
pub struct LiveArgs {
    #[command(flatten)]
    pub probe: ProbeArgs,
    /// Print events and findings as text instead of the terminal UI.
    #[arg(long)]
    pub no_tui: bool,
    #[command(flatten)]
    pub observe: ObserveArgs,
    /// Stop after this long (e.g. 500ms, 5s, 2m, 1h30m; plain numbers are
    /// seconds; more than 0, at most 10 years).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
}

#[derive(Args, Debug)]
pub struct RecordArgs {
    #[command(flatten)]
    pub probe: ProbeArgs,
    /// Trace file to write (a new file: written at this name from the
    /// start, so a killed recorder leaves it readable).
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// Replace FILE if it exists (the new recording goes to a temporary
    /// file beside it and replaces it when the recording ends).
    #[arg(long)]
    pub force: bool,
    /// Stop after this long (e.g. 500ms, 5s, 2m, 1h30m; plain numbers are
    /// seconds; more than 0, at most 10 years).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// No status line on stderr.
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub observe: ObserveArgs,
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
    /// Live: check for this long (e.g. 500ms, 5s, 2m, 1h30m; plain numbers
    /// are seconds; more than 0, at most 10 years).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    #[arg(long, value_enum, default_value = "text")]
    pub format: ReportFormat,
    /// Only these rules (id or name; repeatable).
    #[arg(long = "rule", value_name = "RULE", value_parser = parse_rule_list)]
    pub rules: Vec<String>,
    /// Suppress these rules (id or name; repeatable).
    #[arg(long = "allow", value_name = "RULE", value_parser = parse_rule_list)]
    pub allow: Vec<String>,
    /// Force a guest/host pairing: `guest-node:BDF=host-BDF` (repeatable).
    #[arg(long = "pair", value_name = "PAIR")]
    pub pairs: Vec<String>,
    /// Read what can be read from damaged files.
    #[arg(long)]
    pub salvage: bool,
    #[command(flatten)]
    pub observe: ObserveArgs,

    /// A rule that could not be judged (a kernel hook it needs is missing
    /// on this kernel) makes the verdict incomplete (exit 2) instead of a
    /// clean verdict that lists it as not judged.
    #[arg(long)]
    pub require_all_rules: bool,
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
    /// Write here instead of stdout (never one of the inputs; written to a
    /// temporary file and renamed to OUT when complete).
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// Replace OUT if it exists.
    #[arg(long)]
    pub force: bool,
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
    /// Stop after this long (e.g. 500ms, 5s, 2m, 1h30m; plain numbers are
    /// seconds; more than 0, at most 10 years).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Most MiB buffered for the aggregator (while disconnected or slow);
    /// beyond it new events are dropped and counted.
    #[arg(long, value_name = "MIB", default_value_t = 64, value_parser = parse_buffer_mib)]
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

// ---- Session 5 (everyday use): terminal conventions, completions, man pages.

/// When to colour output (`--color`).
#[derive(ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ColorWhen {
    /// Colour when the output is a terminal and `NO_COLOR` is unset or empty.
    #[default]
    Auto,
    /// Always colour (even into a pipe; overrides `NO_COLOR`).
    Always,
    /// Never colour.
    Never,
}

/// Options of every command about the terminal.
#[derive(Args, Debug, Clone, Default)]
pub struct TermArgs {
    /// Colours of the terminal UI and of help/error messages: auto (when
    /// the output is a terminal and NO_COLOR is unset or empty), always,
    /// never.
    #[arg(
        long,
        global = true,
        value_enum,
        value_name = "WHEN",
        default_value = "auto"
    )]
    pub color: ColorWhen,
}

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to write the script for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `vfio-trace __man-pages DIR`, what `cargo xtask man` runs: read before
/// clap, so it is in no help, man page or completion script.
pub const MAN_PAGES_ARG: &str = "__man-pages";

/// The DIR of `vfio-trace __man-pages DIR`, if that is the command line.
pub fn man_pages_request(args: &[std::ffi::OsString]) -> Option<PathBuf> {
    match args {
        [_, cmd, dir] if cmd == MAN_PAGES_ARG => Some(PathBuf::from(dir)),
        _ => None,
    }
}

/// `--color` taken out of the command line before clap parses the rest:
/// clap's own help and errors follow it, and it may stand before or after
/// the subcommand (clap refuses top-level flags before a subcommand here,
/// `args_conflicts_with_subcommands`). The last valid `--color WHEN` or
/// `--color=WHEN` before a lone `--` wins; an invalid one is left in place
/// for clap to report.
pub fn take_color<I, S>(args: I) -> (Option<ColorWhen>, Vec<std::ffi::OsString>)
where
    I: IntoIterator<Item = S>,
    S: Into<std::ffi::OsString>,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
    let mut found = None;
    let mut rest = Vec::with_capacity(args.len());
    let mut i = 0;
    let mut after_dashes = false;
    while i < args.len() {
        let a = args[i].to_str().filter(|_| !after_dashes);
        if a == Some("--") {
            after_dashes = true;
        }
        let (value, taken) = match a {
            Some("--color") => (args.get(i + 1).and_then(|v| v.to_str()), 2),
            Some(a) => (a.strip_prefix("--color="), 1),
            None => (None, 1),
        };
        match value.and_then(|v| ColorWhen::from_str(v, false).ok()) {
            Some(w) => {
                found = Some(w);
                i += taken;
            }
            None => {
                rest.push(args[i].clone());
                i += 1;
            }
        }
    }
    (found, rest)
}

/// The longest `--duration` accepted (10 years, a year being 365.25 days):
/// longer is a typo, and timers that far out overflow clocks.
pub const MAX_DURATION: Duration = Duration::from_secs(10 * 31_557_600);
const MAX_DURATION_TEXT: &str = "10 years";

/// A `--duration`: `500ms`, `5s`, `2m`, `1h30m`, `1.5s`, `2days`, or plain
/// seconds (`3`, `0.5`); the units and their spellings are humantime's
/// (ns, us, ms, s/sec, m/min, h/hours, d/days, w/weeks, M/months,
/// y/years). More than 0, at most [`MAX_DURATION`].
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err(format!(
            "empty duration {s:?}: expected e.g. 500ms, 5s, 2m, 1h"
        ));
    }
    // Plain numbers are seconds (the original grammar); humantime wants a unit.
    let plain = t.chars().all(|c| c.is_ascii_digit() || c == '.');
    let spelled = if plain {
        format!("{t}s")
    } else {
        t.to_string()
    };
    let d = humantime::parse_duration(&spelled).map_err(|e| match e {
        humantime::DurationError::NumberOverflow => {
            format!("duration {s:?} is too long (at most {MAX_DURATION_TEXT}) or finer than 1ns")
        }
        e => format!("bad duration {s:?}: {e} (e.g. 500ms, 5s, 2m, 1h)"),
    })?;
    if d.is_zero() {
        return Err(format!(
            "duration {s:?} is zero: give how long to run, e.g. 5s (omit --duration to run until stopped)"
        ));
    }
    if d > MAX_DURATION {
        return Err(format!(
            "duration {s:?} is too long: at most {MAX_DURATION_TEXT} (omit --duration to run until stopped)"
        ));
    }
    Ok(d)
}

/// The largest `--buffer-mib` (64 GiB): beyond it the buffer is not a
/// bound any more.
pub const MAX_BUFFER_MIB: usize = 64 << 10;

/// `--buffer-mib N`: 1 to [`MAX_BUFFER_MIB`].
pub fn parse_buffer_mib(s: &str) -> Result<usize, String> {
    let n: usize = s
        .trim()
        .parse()
        .map_err(|e| format!("bad size {s:?}: {e} (a whole number of MiB, e.g. 64)"))?;
    if n == 0 || n > MAX_BUFFER_MIB {
        return Err(format!(
            "{n} MiB is out of range: 1 to {MAX_BUFFER_MIB} MiB"
        ));
    }
    Ok(n)
}

/// `--node NAME`: 1 to 64 bytes, no whitespace or control characters (the
/// agent protocol's rule; the name is in every event line and trace file).
pub fn parse_node_name(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("empty node name".into());
    }
    if s.len() > MAX_NAME_LEN {
        return Err(format!(
            "node name {s:?} is {} bytes long: at most {MAX_NAME_LEN}",
            s.len()
        ));
    }
    if let Some(c) = s.chars().find(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!("node name {s:?} contains {c:?}"));
    }
    Ok(s.to_string())
}

/// `--rule R`/`--allow R`: rule ids or names, comma-separated; at least one
/// (an empty value, say from an unset variable, would silently mean "every
/// rule" for `--rule`). Unknown names are refused by `check` itself.
pub fn parse_rule_list(s: &str) -> Result<String, String> {
    if s.split(',').all(|r| r.trim().is_empty()) {
        return Err(format!(
            "no rule in {s:?}: give a rule id or name, e.g. VT001 or stale-mapping"
        ));
    }
    Ok(s.to_string())
}

/// `--token T`: at most 256 bytes (the agent protocol's limit). The value
/// is secret, so errors do not repeat it.
pub fn parse_token(s: &str) -> Result<String, String> {
    if s.len() > MAX_TOKEN_LEN {
        return Err(format!(
            "the token is {} bytes long: at most {MAX_TOKEN_LEN}",
            s.len()
        ));
    }
    Ok(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration(" 1m30s "), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("10y"), Ok(MAX_DURATION));
        for bad in [
            "5 parsecs",
            "",
            "  ",
            "0",
            "0s",
            "0.0",
            "-5s",
            "5s-",
            "nan",
            "inf",
            "1e9",
            "18446744073709551615s",
            "18446744073709551615",
            "99999999999999999999999s",
            "11y",
            "0.1ns",
            "1.",
            "s",
            "５s",
            "5\u{0}s",
        ] {
            let e = parse_duration(bad).expect_err(bad);
            assert!(
                e.contains(&format!("{bad:?}")),
                "{bad:?}: the error names the value: {e}"
            );
        }
    }

    #[test]
    fn buffer_sizes() {
        assert_eq!(parse_buffer_mib("64"), Ok(64));
        assert_eq!(parse_buffer_mib("65536"), Ok(MAX_BUFFER_MIB));
        for bad in [
            "0",
            "65537",
            "-1",
            "18446744073709551615",
            "1e3",
            "",
            "lots",
        ] {
            let e = parse_buffer_mib(bad).expect_err(bad);
            assert!(e.contains(bad), "{bad:?}: {e}");
        }
    }

    #[test]
    fn node_names() {
        assert_eq!(parse_node_name("l1"), Ok("l1".to_string()));
        assert_eq!(parse_node_name("hôte-β"), Ok("hôte-β".to_string()));
        assert!(parse_node_name("").is_err());
        assert!(parse_node_name("a\nb").is_err());
        assert!(parse_node_name("a b").is_err());
        assert!(parse_node_name(&"x".repeat(65)).is_err());
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn color_anywhere() {
        let parse = |args: &[&str]| {
            let (when, rest) = take_color(args.iter().copied());
            (when, Cli::try_parse_from(rest))
        };
        for args in [
            &["vfio-trace", "--color", "never", "replay", "x.vtrace"][..],
            &["vfio-trace", "replay", "--color=never", "x.vtrace"],
            &["vfio-trace", "replay", "x.vtrace", "--color", "never"],
            &["vfio-trace", "--color=never", "--no-tui"],
        ] {
            let (when, cli) = parse(args);
            assert_eq!(when, Some(ColorWhen::Never), "{args:?}");
            cli.unwrap_or_else(|e| panic!("{args:?}: {e}"));
        }
        // Without the pre-pass, clap takes it after the subcommand.
        let cli = Cli::try_parse_from(["vfio-trace", "replay", "--color=never", "x"]).unwrap();
        assert_eq!(cli.term.color, ColorWhen::Never);
        let (when, cli) = parse(&["vfio-trace", "replay", "x.vtrace"]);
        assert_eq!(when, None);
        assert_eq!(cli.unwrap().term.color, ColorWhen::Auto);
        let (when, cli) = parse(&["vfio-trace", "--color", "sometimes"]);
        assert_eq!(when, None);
        assert!(cli.is_err(), "clap reports the bad value");
        let (when, rest) = take_color([
            "vfio-trace",
            "record",
            "-o",
            "f",
            "--",
            "ls",
            "--color=always",
        ]);
        assert_eq!(when, None, "a command's own --color is not ours");
        assert_eq!(rest.len(), 7);
        let (when, _) = take_color(["vfio-trace", "--color=always", "--color", "never"]);
        assert_eq!(when, Some(ColorWhen::Never), "the last one wins");
    }

    #[test]
    fn completions_for_each_shell() {
        for shell in ["bash", "zsh", "fish"] {
            let cli = Cli::try_parse_from(["vfio-trace", "completions", shell]).unwrap();
            assert!(
                matches!(cli.command, Some(Command::Completions(_))),
                "{shell}"
            );
        }
        assert!(Cli::try_parse_from(["vfio-trace", "completions", "tcsh"]).is_err());
    }

    #[test]
    fn man_pages_are_not_a_subcommand() {
        let args = |a: &[&str]| a.iter().map(std::ffi::OsString::from).collect::<Vec<_>>();
        assert_eq!(
            man_pages_request(&args(&["vfio-trace", "__man-pages", "/tmp/m"])),
            Some(PathBuf::from("/tmp/m"))
        );
        assert_eq!(
            man_pages_request(&args(&["vfio-trace", "__man-pages"])),
            None
        );
        assert_eq!(
            man_pages_request(&args(&["vfio-trace", "replay", "x"])),
            None
        );
        assert!(Cli::try_parse_from(["vfio-trace", "__man-pages", "/tmp/m"]).is_err());
        let mut script = Vec::new();
        clap_complete::generate(
            clap_complete::Shell::Bash,
            &mut <Cli as clap::CommandFactory>::command(),
            "vfio-trace",
            &mut script,
        );
        assert!(!String::from_utf8_lossy(&script).contains("man-pages"));
    }

    #[test]
    fn no_subcommand_means_live() {
        let cli = Cli::try_parse_from(["vfio-trace", "--no-tui", "--duration", "1s"]).unwrap();
        assert!(cli.command.is_none());
        assert!(cli.live.no_tui);
    }
}
