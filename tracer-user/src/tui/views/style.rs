//! Colours: one per node, one per kind of event, red for failures.

use std::sync::atomic::{AtomicBool, Ordering};

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

static COLOUR: AtomicBool = AtomicBool::new(true);

/// Whether the UI draws in colour (`--color`, `NO_COLOR`; decided at start).
pub fn set_colour(on: bool) {
    COLOUR.store(on, Ordering::Relaxed);
}

pub fn colour() -> bool {
    COLOUR.load(Ordering::Relaxed)
}

/// `--color never` / `NO_COLOR`: the drawn screen without colours. Text
/// keeps its modifiers (bold, reverse); a cell that stood out only by its
/// background (a highlight) is shown reversed instead.
pub fn monochrome(buf: &mut ratatui::buffer::Buffer) {
    for cell in buf.content.iter_mut() {
        if cell.bg != Color::Reset {
            cell.modifier.insert(Modifier::REVERSED);
        }
        cell.fg = Color::Reset;
        cell.bg = Color::Reset;
    }
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
    use ratatui::{buffer::Buffer, layout::Rect};

    use super::*;

    #[test]
    fn monochrome_drops_every_colour_and_keeps_highlights_visible() {
        let mut buf = Buffer::empty(Rect::new(0, 0, 8, 1));
        buf.set_string(0, 0, "err", error());
        buf.set_string(3, 0, "hi", highlight());
        buf.set_string(5, 0, "sel", selected());
        monochrome(&mut buf);
        for cell in &buf.content {
            assert_eq!((cell.fg, cell.bg), (Color::Reset, Color::Reset));
        }
        assert!(buf[(0, 0)].modifier.contains(Modifier::BOLD));
        assert!(buf[(3, 0)].modifier.contains(Modifier::REVERSED));
        assert!(buf[(5, 0)].modifier.contains(Modifier::REVERSED));
        assert!(!buf[(0, 0)].modifier.contains(Modifier::REVERSED));
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(4_200_000_000), "4.2s");
        assert_eq!(duration(123_000_000_000), "2m03s");
        assert_eq!(duration(3_723_000_000_000), "1h02m03s");
    }
}
