//! Colours: one per node, one per kind of event, red for failures.

use ratatui::style::{Color, Modifier, Style};

use crate::tui::event_info::Category;

const NODE_COLOURS: [Color; 6] = [
    Color::LightBlue,
    Color::LightMagenta,
    Color::LightGreen,
    Color::LightYellow,
    Color::LightCyan,
    Color::LightRed,
];

pub fn node(id: u16) -> Style {
    Style::new().fg(NODE_COLOURS[usize::from(id) % NODE_COLOURS.len()])
}

pub fn category(c: Category) -> Style {
    Style::new().fg(match c {
        Category::HostMap => Color::Green,
        Category::Guest => Color::Cyan,
        Category::Memslot => Color::Blue,
        Category::Msi => Color::Magenta,
        Category::Setup => Color::Yellow,
        Category::Health => Color::DarkGray,
    })
}

pub fn error() -> Style {
    Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
}

pub fn warn() -> Style {
    Style::new().fg(Color::Yellow)
}

pub fn ok() -> Style {
    Style::new().fg(Color::Green)
}

pub fn dim() -> Style {
    Style::new().fg(Color::DarkGray)
}

pub fn title() -> Style {
    Style::new().add_modifier(Modifier::BOLD)
}

pub fn selected() -> Style {
    Style::new().add_modifier(Modifier::REVERSED)
}

pub fn highlight() -> Style {
    Style::new().bg(Color::Rgb(60, 40, 0))
}

/// `1h02m03s`, `2m03s`, `4.2s`.
pub fn duration(ns: u64) -> String {
    let s = ns / 1_000_000_000;
    match s {
        0..=59 => format!("{}.{}s", s, (ns / 100_000_000) % 10),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m{:02}s", s / 3600, (s / 60) % 60, s % 60),
    }
}

/// Node-clock seconds with microseconds: `12.000002`.
pub fn ts(ns: u64) -> String {
    format!("{}.{:06}", ns / 1_000_000_000, (ns % 1_000_000_000) / 1000)
}

#[cfg(test)]
mod tests {
    use super::duration;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(4_200_000_000), "4.2s");
        assert_eq!(duration(123_000_000_000), "2m03s");
        assert_eq!(duration(3_723_000_000_000), "1h02m03s");
    }
}
