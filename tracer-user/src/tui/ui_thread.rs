//! The terminal thread: reads keys and mouse, keeps the [`UiState`], draws
//! the newest snapshot. It only ever takes the latest snapshot, so a slow
//! terminal skips frames and never holds up ingestion.

use std::{sync::Arc, time::Duration};

use anyhow::Result;
use crossterm::event::{self, Event as TermEvent, KeyEventKind};
use tokio::sync::{mpsc, watch};

use super::{
    input::{self, Action, ReplayCmd},
    snapshot::Snapshot,
    terminal::TerminalGuard,
    ui_state::UiState,
    views,
};

/// At most this many frames per second.
pub const FPS: u64 = 30;

pub struct Channels {
    pub snapshots: watch::Receiver<Arc<Snapshot>>,
    pub ui: watch::Sender<UiState>,
    pub replay: Option<mpsc::UnboundedSender<ReplayCmd>>,
}

/// Runs until the user quits or the ingest side goes away.
pub fn run(mut ch: Channels, mut ui: UiState) -> Result<()> {
    let mut term = TerminalGuard::enter()?;
    let size = term.terminal.size()?;
    ui.body_height = views::body_height(size.height, &ui);
    let _ = ch.ui.send(ui.clone());
    let mut snap = ch.snapshots.borrow().clone();
    let frame = Duration::from_millis(1000 / FPS);
    let mut redraw = true;
    loop {
        match ch.snapshots.has_changed() {
            Ok(true) => {
                snap = ch.snapshots.borrow_and_update().clone();
                let before = ui.clone();
                input::adopt(&mut ui, &snap);
                if ui != before {
                    ui.generation += 1;
                    let _ = ch.ui.send(ui.clone());
                }
                redraw = true;
            }
            Ok(false) => {}
            Err(_) => return Ok(()),
        }
        if redraw {
            let colour = views::style::colour();
            term.terminal.draw(|f| {
                views::draw(&snap, &ui, f);
                if !colour {
                    views::style::monochrome(f.buffer_mut());
                }
            })?;
            redraw = false;
        }
        if !event::poll(frame)? {
            continue;
        }
        let before = ui.clone();
        let input = event::read()?;
        // Keys move cursors through the rows of the snapshot: wait (a
        // little) for the one built for the current state.
        if snap.generation < ui.generation {
            if let Some(newer) = wait_for_generation(&mut ch.snapshots, ui.generation) {
                snap = newer;
                redraw = true;
            }
        }
        let action = match input {
            TermEvent::Key(k) if k.kind != KeyEventKind::Release => {
                input::handle_key(&mut ui, &snap, k)
            }
            TermEvent::Mouse(m) => input::handle_mouse(&mut ui, &snap, m),
            TermEvent::Resize(_, rows) => {
                ui.body_height = views::body_height(rows, &ui);
                Action::None
            }
            _ => Action::None,
        };
        match action {
            Action::Quit => return Ok(()),
            Action::Replay(cmd) => {
                if let Some(tx) = &ch.replay {
                    let _ = tx.send(cmd);
                }
            }
            Action::Repaint => {
                term.terminal.clear()?;
                redraw = true;
            }
            Action::None => {}
        }
        if ui != before {
            ui.generation += 1;
            let _ = ch.ui.send(ui.clone());
            redraw = true;
        }
    }
}

/// Waits up to 250 ms for a snapshot of at least `generation` (ingestion
/// busy: the key is then resolved on the newest one there is). Returns the
/// newest snapshot received, if any.
fn wait_for_generation(
    rx: &mut watch::Receiver<Arc<Snapshot>>,
    generation: u64,
) -> Option<Arc<Snapshot>> {
    let deadline = std::time::Instant::now() + Duration::from_millis(250);
    let mut latest = None;
    while std::time::Instant::now() < deadline {
        if rx.has_changed().unwrap_or(false) {
            let s = rx.borrow_and_update().clone();
            let done = s.generation >= generation;
            latest = Some(s);
            if done {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    latest
}
