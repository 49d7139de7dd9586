//! `vfio-trace`: the binary. Probes → decoder → engine → views; this crate
//! holds the parts that need the kernel or a terminal (probe loading, live
//! sources, the CLI, the UI). Everything pure lives in `tracer-core`.

mod cli;
mod cmd;
mod colour;
mod findings_log;
mod metrics;
mod net;
mod node;
mod probes;
mod source;
mod sudo_owner;
mod tui;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

fn main() -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(dir) = cli::man_pages_request(&argv) {
        return match cmd::completions::man_pages(&dir) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("vfio-trace: error: {e:#}");
                ExitCode::from(cmd::EXIT_CANNOT)
            }
        };
    }
    // --color is taken out first: clap's help and errors follow it, and it
    // may stand before the subcommand.
    let (early, args) = cli::take_color(argv);
    let matches = cli::Cli::command()
        .color(colour::clap_choice(early.unwrap_or_default()))
        .get_matches_from(args);
    let cli = cli::Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    colour::init(early.unwrap_or(cli.term.color));
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .format_timestamp_millis()
        .init();
    match cmd::run(cli) {
        Ok(code) => code,
        Err(e) => {
            let hint = e.downcast_ref::<cmd::Hint>();
            eprintln!("vfio-trace: error: {}", error_chain(&e, hint.is_some()));
            if let Some(h) = hint {
                eprintln!("vfio-trace: {h}");
            }
            ExitCode::from(cmd::EXIT_CANNOT)
        }
    }
}

/// The error and its causes, `: `-separated, each said once: a cause whose
/// text is already in what was said (an error that quotes its source, like
/// "I/O error at offset 0: … (os error 2)" before that OS error) is skipped.
/// Without the outermost context when it is a hint (said after).
fn error_chain(e: &anyhow::Error, skip_hint: bool) -> String {
    let mut out = String::new();
    for cause in e.chain().skip(usize::from(skip_hint)) {
        let text = cause.to_string();
        let text = text.trim();
        if text.is_empty() || out.contains(text) {
            continue;
        }
        if !out.is_empty() {
            out += ": ";
        }
        out += text;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::error_chain;

    #[test]
    fn each_cause_is_said_once() {
        let io = std::io::Error::from_raw_os_error(2);
        let e = anyhow::Error::new(io)
            .context(format!(
                "I/O error at offset 0: {}",
                std::io::Error::from_raw_os_error(2)
            ))
            .context("opening x.vtrace");
        let s = error_chain(&e, false);
        assert_eq!(s.matches("os error 2").count(), 1, "{s}");
        assert!(
            s.starts_with("opening x.vtrace: I/O error at offset 0: "),
            "{s}"
        );
    }
}
