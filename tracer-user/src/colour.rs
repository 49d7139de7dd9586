//! Whether to colour: `--color auto|always|never` and `NO_COLOR`
//! (<https://no-color.org>: set and not empty means no colour, unless the
//! user asks with `--color always`). Decided once at start; the terminal UI
//! draws without colour when told so. Text output (`--no-tui`, `check`,
//! `replay --print`) has no colour at all, and `record`'s status line is
//! cursor control only, written when stderr is a terminal.

use crate::cli::ColorWhen;

/// Whether to colour, given `--color`, `$NO_COLOR` and whether the output
/// is a terminal.
pub fn decide(when: ColorWhen, no_color: Option<&std::ffi::OsStr>, terminal: bool) -> bool {
    match when {
        ColorWhen::Always => true,
        ColorWhen::Never => false,
        ColorWhen::Auto => terminal && no_color.is_none_or(|v| v.is_empty()),
    }
}

/// Decides for this process (stdout is where the UI draws) and tells the
/// terminal UI.
pub fn init(when: ColorWhen) {
    use std::io::IsTerminal;
    let on = decide(
        when,
        std::env::var_os("NO_COLOR").as_deref(),
        std::io::stdout().is_terminal(),
    );
    crate::tui::views::style::set_colour(on);
    // crossterm reads NO_COLOR itself; our decision (with --color) stands.
    crossterm::style::force_color_output(on);
}

/// clap's own help and errors follow `--color` too.
pub fn clap_choice(when: ColorWhen) -> clap::ColorChoice {
    match when {
        // clap's auto already honours NO_COLOR and the terminal.
        ColorWhen::Auto => clap::ColorChoice::Auto,
        ColorWhen::Always => clap::ColorChoice::Always,
        ColorWhen::Never => clap::ColorChoice::Never,
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use super::*;

    #[test]
    fn no_color_and_the_flag() {
        let set = Some(OsStr::new("1"));
        let empty = Some(OsStr::new(""));
        assert!(decide(ColorWhen::Auto, None, true));
        assert!(!decide(ColorWhen::Auto, None, false), "not a terminal");
        assert!(!decide(ColorWhen::Auto, set, true), "NO_COLOR=1");
        assert!(
            decide(ColorWhen::Auto, empty, true),
            "NO_COLOR= (empty) is unset"
        );
        assert!(decide(ColorWhen::Always, set, false), "--color always wins");
        assert!(!decide(ColorWhen::Never, None, true));
    }
}
