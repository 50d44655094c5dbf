//! Where each pane goes for a terminal size. Pure, and shared by the views (to draw) and the
//! App (to know how many rows a page is), so both agree.
//!
//! Wide terminals (72 columns and more) show the inbox beside the thread; narrow ones show
//! the focused pane alone. The composer grows with its text up to six rows and never takes
//! more than half the column. The subscriber pane takes the inbox's column (on a narrow
//! terminal, the thread's place above the composer); the ops view takes the whole middle.

use ratatui::layout::{Constraint, Layout, Rect};

use super::{composer, thread};
use crate::client::app::{App, Focus, Screen};
use crate::client::text;

/// Below this width, one pane at a time.
pub const TWO_PANES_FROM: u16 = 72;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Areas {
    pub top: Rect,
    pub inbox: Option<Rect>,
    /// The thread pane (with its border), when a column for it is shown.
    pub thread: Option<Rect>,
    pub composer: Option<Rect>,
    /// The subscriber pane, when it is open.
    pub subscriber: Option<Rect>,
    /// The ops view, when it is on screen (nothing else is, between the bars).
    pub ops: Option<Rect>,
    pub status: Rect,
}

pub fn areas(app: &App) -> Areas {
    let full = Rect::new(0, 0, app.size.0, app.size.1);
    let [top, main, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(full);
    if app.screen == Screen::Ops {
        return Areas {
            top,
            inbox: None,
            thread: None,
            composer: None,
            subscriber: None,
            ops: Some(main),
            status,
        };
    }
    let pane = app.subscriber_pane && app.thread.is_some();
    let (inbox, right) = if main.width >= TWO_PANES_FROM {
        let w = (main.width * 2 / 5).clamp(30, 56);
        let [l, r] = Layout::horizontal([Constraint::Length(w), Constraint::Fill(1)]).areas(main);
        (Some(l), Some(r))
    } else if app.thread.is_none() || app.focus == Focus::Inbox {
        (Some(main), None)
    } else {
        (None, Some(main))
    };
    let (mut thread, composer) = match right {
        Some(r) if app.thread.is_some() => {
            let h = composer_height(app, r.width).min(r.height / 2).max(3);
            let [t, c] = Layout::vertical([Constraint::Fill(1), Constraint::Length(h)]).areas(r);
            (Some(t), Some(c))
        }
        other => (other, None),
    };
    let mut inbox = inbox;
    let mut subscriber = None;
    if pane {
        if main.width >= TWO_PANES_FROM {
            subscriber = inbox.take();
        } else {
            subscriber = thread.take();
        }
    }
    Areas {
        top,
        inbox,
        thread,
        composer,
        subscriber,
        ops: None,
        status,
    }
}

/// Rows the composer wants: its text (1–6 rows), its notes (up to 9), and a border; closed,
/// the lines that say why.
fn composer_height(app: &App, width: u16) -> u16 {
    let inner = width.saturating_sub(2).max(1) as usize;
    if let Some(lines) = composer::closed_lines(app, inner) {
        return 2 + lines.len() as u16;
    }
    let rows: usize = app
        .composer
        .textarea()
        .lines()
        .iter()
        .map(|l| text::wrapped_height(l, inner))
        .sum();
    let notes = composer::notes(app, inner).len().min(9);
    (2 + rows.clamp(1, 6) + notes) as u16
}

/// The thread pane split into its header (conversation line, banners) and the messages.
pub fn thread_parts(app: &App, pane: Rect) -> (Rect, Rect) {
    let inner = Rect {
        x: pane.x + 1,
        y: pane.y + 1,
        width: pane.width.saturating_sub(2),
        height: pane.height.saturating_sub(2),
    };
    let header = app
        .thread
        .as_ref()
        .map(|t| thread::header_lines(app, &t.conversation, inner.width as usize).len())
        .unwrap_or(0) as u16;
    let [h, m] = Layout::vertical([
        Constraint::Length(header.min(inner.height)),
        Constraint::Fill(1),
    ])
    .areas(inner);
    (h, m)
}

/// Conversations per inbox page (each takes two rows).
pub fn inbox_page(app: &App) -> usize {
    let rows = areas(app).inbox.map_or(20, |r| r.height.saturating_sub(2));
    (rows / 2).max(1) as usize
}

fn messages_area(app: &App) -> Rect {
    let a = areas(app);
    let pane = a.thread.unwrap_or_else(|| {
        // Narrow, inbox focused: measure as if the thread filled the main area.
        Rect {
            x: 0,
            y: 1,
            width: app.size.0,
            height: app.size.1.saturating_sub(2),
        }
    });
    thread_parts(app, pane).1
}

/// Rows of messages the thread shows.
pub fn thread_page(app: &App) -> usize {
    messages_area(app).height.max(1) as usize
}

/// Columns the thread's messages are wrapped to.
pub fn thread_width(app: &App) -> usize {
    messages_area(app).width.max(1) as usize
}
