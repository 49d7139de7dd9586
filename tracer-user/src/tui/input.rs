//! Keys and mouse → changes to [`UiState`], plus the few actions that leave
//! the UI (quit, replay control). Moves are resolved against the snapshot on
//! screen: cursors are identities (event ids, chain keys), the snapshot
//! holds the rows around them.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseEvent, MouseEventKind};

use super::{
    filter::Filter,
    snapshot::{ChainRowKind, Snapshot},
    ui_state::{ChainKey, Prompt, PromptKind, Tab, UiState},
};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ReplayCmd {
    TogglePlay,
    Step,
    Faster,
    Slower,
    /// Seconds from the start of the trace.
    JumpTo(f64),
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Action {
    None,
    Quit,
    Replay(ReplayCmd),
    /// Ctrl-L: repaint the whole screen (something else wrote on it).
    Repaint,
}

pub fn handle_key(ui: &mut UiState, snap: &Snapshot, key: KeyEvent) -> Action {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    if ctrl && matches!(key.code, KeyCode::Char('c')) {
        return Action::Quit;
    }
    if ctrl && matches!(key.code, KeyCode::Char('l')) {
        return Action::Repaint;
    }
    if ui.prompt.is_some() {
        return prompt_key(ui, key);
    }
    if ui.help {
        if matches!(key.code, KeyCode::Char('q')) {
            return Action::Quit;
        }
        ui.help = false;
        return Action::None;
    }
    ui.message = None;
    if ui.tab == Tab::Chains {
        if let Some(a) = history_key(ui, snap, key.code) {
            return a;
        }
    }
    match key.code {
        KeyCode::Char('q') => return Action::Quit,
        KeyCode::Char('?') => ui.help = true,
        KeyCode::Char(c @ '1'..='5') => ui.tab = Tab::ALL[usize::from(c as u8 - b'1')],
        KeyCode::Tab => ui.tab = Tab::ALL[(ui.tab.index() + 1) % Tab::ALL.len()],
        KeyCode::BackTab => {
            ui.tab = Tab::ALL[(ui.tab.index() + Tab::ALL.len() - 1) % Tab::ALL.len()]
        }
        KeyCode::Esc => ui.events.highlight.clear(),
        KeyCode::Char('r') if !ui.replay => ui.record_toggles += 1,
        _ => {
            if ui.replay {
                if let Some(a) = replay_key(ui, snap, key.code) {
                    return a;
                }
            }
            tab_key(ui, snap, key.code, 1);
        }
    }
    Action::None
}

/// The Chains view's history mode: `h` toggles it (replay); in it, moves
/// go through the list, Enter jumps to the middle of the selected
/// mapping's life and shows it in the tree with its chain, Esc leaves.
fn history_key(ui: &mut UiState, snap: &Snapshot, code: KeyCode) -> Option<Action> {
    if code == KeyCode::Char('h') {
        if ui.replay {
            ui.chains.history = !ui.chains.history;
        } else {
            ui.message = Some("history (h) is for replays: record, then replay the file".into());
        }
        return Some(Action::None);
    }
    if !ui.chains.history {
        return None;
    }
    let h = snap.chains.history.as_ref()?;
    match code {
        KeyCode::Esc => ui.chains.history = false,
        KeyCode::Char('n') => {
            // All nodes, then each node in turn.
            let next = ui.chains.history_node.map_or(0, |n| usize::from(n) + 1);
            ui.chains.history_node = u16::try_from(next).ok().filter(|_| next < h.nodes);
            ui.chains.history_cursor = 0;
        }
        KeyCode::Enter => {
            let row = h.rows.get(h.cursor)?;
            ui.chains.history = false;
            ui.chains.focus = None;
            ui.chains.cursor = Some(ChainKey::Mapping {
                node: row.life.node,
                domain: row.life.domain,
                iova: row.life.iova,
            });
            ui.chains.screen_row = ui.body_height / 3;
            let secs = row.jump_ns().max(0) as f64 / 1e9;
            return Some(Action::Replay(ReplayCmd::JumpTo(secs)));
        }
        code => {
            let d = delta(ui, code)?;
            ui.chains.history_cursor = moved(h.total, ui.chains.history_cursor, d);
        }
    }
    Some(Action::None)
}

fn replay_key(ui: &mut UiState, snap: &Snapshot, code: KeyCode) -> Option<Action> {
    let cmd = match code {
        KeyCode::Char(c @ ('[' | ']')) => {
            match snap.replay.as_ref().and_then(|r| r.finding_jump(c == ']')) {
                Some(secs) => ReplayCmd::JumpTo(secs),
                None => {
                    let which = if c == ']' { "after" } else { "before" };
                    ui.message = Some(format!("no finding {which} this point"));
                    return Some(Action::None);
                }
            }
        }
        KeyCode::Char(' ') => ReplayCmd::TogglePlay,
        KeyCode::Right | KeyCode::Char('.') => ReplayCmd::Step,
        KeyCode::Char('+') | KeyCode::Char('=') => ReplayCmd::Faster,
        KeyCode::Char('-') => ReplayCmd::Slower,
        KeyCode::Char('g') => {
            ui.prompt = Some(Prompt {
                kind: PromptKind::JumpTime,
                text: String::new(),
            });
            return Some(Action::None);
        }
        _ => return None,
    };
    Some(Action::Replay(cmd))
}

fn prompt_key(ui: &mut UiState, key: KeyEvent) -> Action {
    let Some(p) = ui.prompt.as_mut() else {
        return Action::None;
    };
    match key.code {
        KeyCode::Esc => ui.prompt = None,
        KeyCode::Backspace => {
            p.text.pop();
        }
        KeyCode::Char(c) => p.text.push(c),
        KeyCode::Enter => {
            let Prompt { kind, text } = ui.prompt.take().unwrap_or(Prompt {
                kind: PromptKind::Search,
                text: String::new(),
            });
            match kind {
                PromptKind::Filter => match Filter::parse(&text, ui.events.filter.search.clone()) {
                    Ok(f) => ui.events.filter = f,
                    Err(e) => ui.message = Some(format!("filter: {e}")),
                },
                PromptKind::Search => {
                    ui.events.filter.search = (!text.is_empty()).then_some(text);
                }
                PromptKind::JumpTime => match text.trim().trim_end_matches('s').parse::<f64>() {
                    Ok(s) if s >= 0.0 => return Action::Replay(ReplayCmd::JumpTo(s)),
                    _ => ui.message = Some(format!("jump: {text:?} is not a number of seconds")),
                },
            }
        }
        _ => {}
    }
    Action::None
}

/// Cursor index after moving `delta` rows in a list of `len`.
fn moved(len: usize, cur: usize, delta: isize) -> usize {
    if len == 0 {
        return 0;
    }
    cur.saturating_add_signed(delta).min(len - 1)
}

/// Movement keys as a row delta (`None`: not a movement key).
fn delta(ui: &UiState, code: KeyCode) -> Option<isize> {
    let page = isize::try_from(ui.body_height.saturating_sub(3).max(1)).unwrap_or(1);
    Some(match code {
        KeyCode::Up | KeyCode::Char('k') => -1,
        KeyCode::Down | KeyCode::Char('j') => 1,
        KeyCode::PageUp => -page,
        KeyCode::PageDown => page,
        KeyCode::Home => isize::MIN / 2,
        KeyCode::End => isize::MAX / 2,
        _ => return None,
    })
}

/// The cursor's screen line after a move (the list has a border above and
/// below, so `body_height - 2` lines).
fn screen_row(row: usize, delta: isize, body_height: usize) -> usize {
    let last = body_height.saturating_sub(3);
    row.min(last).saturating_add_signed(delta).min(last)
}

fn tab_key(ui: &mut UiState, snap: &Snapshot, code: KeyCode, mult: isize) {
    match ui.tab {
        Tab::Events => events_key(ui, snap, code, mult),
        Tab::Chains => chains_key(ui, snap, code, mult),
        Tab::Doorbells => {
            if let Some(d) = delta(ui, code) {
                ui.doorbells_cursor = moved(
                    snap.doorbells.devices.len(),
                    ui.doorbells_cursor,
                    d.saturating_mul(mult),
                );
            }
        }
        Tab::Findings => findings_key(ui, snap, code, mult),
        Tab::Health => {
            if let Some(d) = delta(ui, code) {
                ui.health_scroll = moved(
                    snap.health.probes.len(),
                    ui.health_scroll,
                    d.saturating_mul(mult),
                );
            }
        }
    }
}

fn events_key(ui: &mut UiState, snap: &Snapshot, code: KeyCode, mult: isize) {
    let step = delta(ui, code);
    let body_height = ui.body_height;
    let e = &mut ui.events;
    match code {
        KeyCode::Char('p') => {
            e.paused_at = match e.paused_at {
                Some(_) => None,
                None => snap.events.rows.last().map(|r| r.id).or(Some(0)),
            };
        }
        KeyCode::Char('f') => {
            ui.prompt = Some(Prompt {
                kind: PromptKind::Filter,
                text: e.filter.to_string(),
            })
        }
        KeyCode::Char('/') => {
            ui.prompt = Some(Prompt {
                kind: PromptKind::Search,
                text: e.filter.search.clone().unwrap_or_default(),
            })
        }
        KeyCode::Char('F') => e.filter = Filter::default(),
        KeyCode::End => {
            e.cursor = None;
            e.screen_row = body_height;
        }
        KeyCode::Home => {
            e.cursor = Some(0);
            e.screen_row = 0;
        }
        _ => {
            let Some(d) = step else { return };
            let rows = &snap.events.rows;
            let Some(cur) = snap.events.cursor else {
                return;
            };
            let to = moved(rows.len(), cur, d.saturating_mul(mult));
            e.cursor = rows.get(to).map(|r| r.id);
            e.screen_row = screen_row(e.screen_row, to as isize - cur as isize, body_height);
        }
    }
}

fn chains_key(ui: &mut UiState, snap: &Snapshot, code: KeyCode, mult: isize) {
    let p = &snap.chains;
    let Some(cur) = p.cursor else { return };
    let fold = matches!(code, KeyCode::Enter)
        || (!ui.replay && matches!(code, KeyCode::Left | KeyCode::Right));
    if fold {
        let Some(row) = p.rows.get(cur) else { return };
        if matches!(
            row.kind,
            ChainRowKind::Mapping { .. } | ChainRowKind::More { .. }
        ) {
            return;
        }
        if let Some(k) = row.key {
            let open = match code {
                KeyCode::Left => false,
                KeyCode::Right => true,
                _ => row.collapsed,
            };
            if open {
                ui.chains.collapsed.remove(&k);
            } else {
                ui.chains.collapsed.insert(k);
            }
            ui.chains.cursor = Some(k);
        }
        return;
    }
    let Some(d) = delta(ui, code) else { return };
    let to = moved(p.rows.len(), cur, d.saturating_mul(mult));
    // Skip rows without identity ("… more").
    let to = if p.rows[to].key.is_none() && to > 0 {
        to - 1
    } else {
        to
    };
    ui.chains.cursor = p.rows[to].key;
    ui.chains.focus = None;
    ui.chains.screen_row = screen_row(
        ui.chains.screen_row,
        to as isize - cur as isize,
        ui.body_height,
    );
}

fn findings_key(ui: &mut UiState, snap: &Snapshot, code: KeyCode, mult: isize) {
    let p = &snap.findings;
    match code {
        KeyCode::Enter => {
            let Some(r) = p.cursor.and_then(|c| p.rows.get(c)) else {
                return;
            };
            ui.tab = Tab::Events;
            ui.events.filter = Filter::default();
            if ui.events.paused_at.is_some_and(|at| at < r.at) {
                ui.events.paused_at = None;
            }
            ui.events.cursor = Some(r.at);
            ui.events.screen_row = ui.body_height / 2;
            ui.events.highlight = r.evidence.clone();
            ui.message = Some(format!(
                "evidence of {} {} highlighted (Esc clears)",
                r.rule, r.name
            ));
        }
        KeyCode::Char('c') => match p.address {
            Some((node, addr, _)) => {
                ui.tab = Tab::Chains;
                ui.chains.focus = Some((node, addr));
                ui.chains.screen_row = ui.body_height / 3;
            }
            None => ui.message = Some("this finding's evidence has no address".into()),
        },
        code => {
            if let Some(d) = delta(ui, code) {
                ui.findings_cursor = moved(p.total, ui.findings_cursor, d.saturating_mul(mult));
            }
        }
    }
}

/// Mouse wheel scrolls like ↑/↓ (three rows).
pub fn handle_mouse(ui: &mut UiState, snap: &Snapshot, m: MouseEvent) -> Action {
    let code = match m.kind {
        MouseEventKind::ScrollUp => KeyCode::Up,
        MouseEventKind::ScrollDown => KeyCode::Down,
        _ => return Action::None,
    };
    if ui.prompt.is_some() || ui.help {
        return Action::None;
    }
    tab_key(ui, snap, code, 3);
    Action::None
}

/// Applies what the newest snapshot resolved: a jump to an address becomes
/// a cursor on its mapping row.
pub fn adopt(ui: &mut UiState, snap: &Snapshot) {
    if ui.chains.focus.is_some() && ui.tab == Tab::Chains {
        if let Some(k) = snap
            .chains
            .cursor
            .and_then(|c| snap.chains.rows.get(c))
            .and_then(|r| r.key)
        {
            ui.chains.cursor = Some(k);
            ui.chains.focus = None;
        }
    }
}
