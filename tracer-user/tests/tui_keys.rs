//! Key and mouse handling of the terminal UI: what each key does to the
//! `UiState`, resolved against a snapshot built from the fixture trace.

#[allow(dead_code, reason = "shared with the binary; only the UI's uses here")]
#[path = "../src/node.rs"]
mod node;
#[allow(dead_code, reason = "shared with the binary; only the UI's uses here")]
#[path = "../src/sudo_owner.rs"]
mod sudo_owner;
#[allow(dead_code, reason = "the tests use part of the UI module")]
#[path = "../src/tui/mod.rs"]
mod tui;
mod tui_fixture;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseEvent, MouseEventKind};
use tui::{
    input::{handle_key, handle_mouse, Action, ReplayCmd},
    model::Model,
    snapshot::{self, Snapshot},
    ui_state::{PromptKind, Tab, UiState},
};

fn model() -> Model {
    let mut m = Model::new(tui_fixture::nodes(), 1000);
    for e in tui_fixture::events() {
        m.apply(&e);
    }
    m.refresh();
    m
}

fn key(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

/// Presses keys one by one, rebuilding the snapshot after each like the
/// ingest side does.
fn press(m: &Model, ui: &mut UiState, keys: &[KeyCode]) -> Vec<Action> {
    keys.iter()
        .map(|k| {
            let snap: Snapshot = snapshot::build(m, ui, 0, None);
            let a = handle_key(ui, &snap, key(*k));
            let snap = snapshot::build(m, ui, 0, None);
            tui::input::adopt(ui, &snap);
            a
        })
        .collect()
}

fn ui(replay: bool) -> UiState {
    let mut u = UiState::new(replay);
    u.body_height = 20;
    u
}

#[test]
fn q_and_ctrl_c_quit_even_from_help() {
    let m = model();
    let mut u = ui(false);
    assert_eq!(press(&m, &mut u, &[KeyCode::Char('q')]), vec![Action::Quit]);
    u.help = true;
    let snap = snapshot::build(&m, &u, 0, None);
    let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
    assert_eq!(handle_key(&mut u, &snap, ctrl_c), Action::Quit);
}

#[test]
fn digits_and_tab_switch_views_and_help_toggles() {
    let m = model();
    let mut u = ui(false);
    press(&m, &mut u, &[KeyCode::Char('4')]);
    assert_eq!(u.tab, Tab::Findings);
    press(&m, &mut u, &[KeyCode::Tab, KeyCode::Tab]);
    assert_eq!(u.tab, Tab::Events);
    press(&m, &mut u, &[KeyCode::BackTab]);
    assert_eq!(u.tab, Tab::Health);
    press(&m, &mut u, &[KeyCode::Char('?')]);
    assert!(u.help);
    press(&m, &mut u, &[KeyCode::Char('1')]);
    assert!(!u.help, "any key closes help");
    assert_eq!(
        u.tab,
        Tab::Health,
        "the key that closes help does nothing else"
    );
}

#[test]
fn arrows_leave_follow_mode_and_end_returns_to_it() {
    let m = model();
    let mut u = ui(false);
    assert_eq!(u.events.cursor, None);
    press(&m, &mut u, &[KeyCode::Up, KeyCode::Up]);
    assert_eq!(u.events.cursor, Some(17));
    press(&m, &mut u, &[KeyCode::Down]);
    assert_eq!(u.events.cursor, Some(18));
    press(&m, &mut u, &[KeyCode::Home]);
    assert_eq!(u.events.cursor, Some(0));
    press(&m, &mut u, &[KeyCode::PageDown]);
    assert_eq!(u.events.cursor, Some(17));
    press(&m, &mut u, &[KeyCode::End]);
    assert_eq!(u.events.cursor, None);
}

#[test]
fn pause_freezes_the_view_at_the_newest_event() {
    let m = model();
    let mut u = ui(false);
    press(&m, &mut u, &[KeyCode::Char('p')]);
    assert_eq!(u.events.paused_at, Some(19));
    press(&m, &mut u, &[KeyCode::Char('p')]);
    assert_eq!(u.events.paused_at, None);
}

#[test]
fn filter_and_search_prompts() {
    let m = model();
    let mut u = ui(false);
    press(&m, &mut u, &[KeyCode::Char('f')]);
    assert_eq!(u.prompt.as_ref().map(|p| p.kind), Some(PromptKind::Filter));
    let typed: Vec<KeyCode> = "pid=312".chars().map(KeyCode::Char).collect();
    press(&m, &mut u, &typed);
    press(&m, &mut u, &[KeyCode::Enter]);
    assert_eq!(u.events.filter.pid, Some(312));
    assert!(u.prompt.is_none());
    let snap = snapshot::build(&m, &u, 0, None);
    assert_eq!(snap.events.matching, 3);

    press(&m, &mut u, &[KeyCode::Char('/')]);
    let typed: Vec<KeyCode> = "attach".chars().map(KeyCode::Char).collect();
    press(&m, &mut u, &typed);
    press(&m, &mut u, &[KeyCode::Enter]);
    assert_eq!(u.events.filter.search.as_deref(), Some("attach"));
    assert_eq!(snapshot::build(&m, &u, 0, None).events.matching, 1);

    press(
        &m,
        &mut u,
        &[KeyCode::Char('f'), KeyCode::Char('x'), KeyCode::Enter],
    );
    assert!(
        u.message.as_deref().unwrap_or("").contains("filter"),
        "{:?}",
        u.message
    );
    press(&m, &mut u, &[KeyCode::Char('F')]);
    assert!(u.events.filter.is_empty());
    press(
        &m,
        &mut u,
        &[KeyCode::Char('/'), KeyCode::Char('z'), KeyCode::Esc],
    );
    assert!(u.prompt.is_none() && u.events.filter.search.is_none());
}

#[test]
fn enter_on_a_finding_jumps_to_its_evidence_and_c_to_its_chain() {
    let m = model();
    let mut u = ui(false);
    // Newest first: VT003 (the MSI-X message), VT008 (EEXIST), VT006.
    u.tab = Tab::Findings;
    press(&m, &mut u, &[KeyCode::Down, KeyCode::Enter]);
    assert_eq!(u.tab, Tab::Events);
    assert_eq!(u.events.cursor, Some(12), "the failed MAP_DMA");
    assert_eq!(u.events.highlight, vec![7, 12]);
    press(&m, &mut u, &[KeyCode::Esc]);
    assert!(u.events.highlight.is_empty());

    u.tab = Tab::Findings;
    press(&m, &mut u, &[KeyCode::Down, KeyCode::Char('c')]);
    assert_eq!(u.tab, Tab::Chains);
    let snap = snapshot::build(&m, &u, 0, None);
    let chain = snap.chains.selected.expect("a chain");
    assert_eq!(chain.iova, 0x20_0000);
    assert!(chain.chains.iter().any(|c| c.broken_at.is_some()));
    assert_eq!(u.chains.focus, None, "the jump became a cursor");
}

#[test]
fn chains_fold_with_enter_and_move_with_arrows() {
    let m = model();
    let mut u = ui(false);
    u.tab = Tab::Chains;
    press(&m, &mut u, &[KeyCode::Home, KeyCode::Enter]);
    let snap = snapshot::build(&m, &u, 0, None);
    assert!(snap.chains.rows[0].collapsed);
    assert_eq!(snap.chains.total_rows, 5);
    press(&m, &mut u, &[KeyCode::Enter, KeyCode::Down, KeyCode::Down]);
    let snap = snapshot::build(&m, &u, 0, None);
    assert!(!snap.chains.rows[0].collapsed);
    assert_eq!(snap.chains.cursor, Some(2));
    assert!(
        snap.chains.selected.is_some(),
        "a mapping row shows its chain"
    );
}

#[test]
fn brackets_jump_to_the_previous_and_next_finding() {
    let m = model();
    let mut u = ui(true);
    let mut snap: Snapshot = snapshot::build(&m, &u, 0, None);
    let mut status = snapshot::ReplayStatus {
        start_ns: 1_000_000_000,
        end_ns: 11_000_000_000,
        now_ns: 4_000_000_000,
        findings_ns: vec![2_000_000_000, 3_000_000_000, 6_500_000_000].into(),
        ..Default::default()
    };
    snap.replay = Some(status.clone());
    let k = |u: &mut UiState, snap: &Snapshot, c| handle_key(u, snap, key(KeyCode::Char(c)));
    assert_eq!(
        k(&mut u, &snap, ']'),
        Action::Replay(ReplayCmd::JumpTo(5.5))
    );
    assert_eq!(
        k(&mut u, &snap, '['),
        Action::Replay(ReplayCmd::JumpTo(2.0))
    );
    // Past the last one: nothing to jump to, said in the footer.
    status.now_ns = 6_500_000_000;
    snap.replay = Some(status);
    assert_eq!(k(&mut u, &snap, ']'), Action::None);
    assert!(u.message.take().unwrap().contains("no finding after"));
    assert_eq!(
        k(&mut u, &snap, '['),
        Action::Replay(ReplayCmd::JumpTo(2.0))
    );
}

#[test]
fn replay_keys_become_commands() {
    let m = model();
    let mut u = ui(true);
    let keys = [
        KeyCode::Char(' '),
        KeyCode::Right,
        KeyCode::Char('+'),
        KeyCode::Char('-'),
    ];
    assert_eq!(
        press(&m, &mut u, &keys),
        vec![
            Action::Replay(ReplayCmd::TogglePlay),
            Action::Replay(ReplayCmd::Step),
            Action::Replay(ReplayCmd::Faster),
            Action::Replay(ReplayCmd::Slower),
        ]
    );
    let mut keys = vec![KeyCode::Char('g')];
    keys.extend("1.5".chars().map(KeyCode::Char));
    keys.push(KeyCode::Enter);
    assert_eq!(
        press(&m, &mut u, &keys).last(),
        Some(&Action::Replay(ReplayCmd::JumpTo(1.5)))
    );
    press(
        &m,
        &mut u,
        &[KeyCode::Char('g'), KeyCode::Char('x'), KeyCode::Enter],
    );
    assert!(u.message.is_some());
    // Live mode ignores them.
    let mut live = ui(false);
    assert_eq!(
        press(&m, &mut live, &[KeyCode::Char(' ')]),
        vec![Action::None]
    );
}

#[test]
fn mouse_wheel_scrolls_three_rows() {
    let m = model();
    let mut u = ui(false);
    u.events.cursor = Some(10);
    let snap = snapshot::build(&m, &u, 0, None);
    let wheel = MouseEvent {
        kind: MouseEventKind::ScrollDown,
        column: 0,
        row: 0,
        modifiers: KeyModifiers::NONE,
    };
    handle_mouse(&mut u, &snap, wheel);
    assert_eq!(u.events.cursor, Some(13));
}
