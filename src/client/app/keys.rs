//! Keys: what each key does, by what has the keyboard (an overlay, the search line, the
//! composer, the thread, the inbox). The help overlay lists the same table (`HELP`), so
//! the two are kept side by side.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::inbox::View;
use super::{App, AttributionPrompt, Effect, Focus, Overlay, Screen, Tone};

/// Every key, grouped as the help overlay shows them.
pub const HELP: &[(&str, &[(&str, &str)])] = &[
    (
        "Everywhere",
        &[
            ("?", "this help"),
            ("Tab / Shift-Tab", "next / previous pane"),
            ("q / Ctrl-C", "quit (asks when text is unsent)"),
            ("Ctrl-R", "reconnect now (outside the composer)"),
        ],
    ),
    (
        "Inbox",
        &[
            ("↑↓ / j k", "move"),
            ("PgUp PgDn / g G", "page, first, last"),
            ("Enter / →", "open the conversation and reply"),
            ("1–5", "All · Unread · Attribution lost · Open · Resolved"),
            ("6", "ops view (ops and owner logins)"),
            ("/", "search number, name or text (Esc clears)"),
            ("t / T", "next / previous tenant"),
        ],
    ),
    (
        "Conversation (inbox or thread)",
        &[
            ("r", "resolve / reopen"),
            ("u", "mark unread"),
            ("a", "assign to me"),
            ("c", "switch the code replies go out on"),
            ("s", "subscriber pane: consent, its history, code block"),
            (
                "o / Ctrl-O",
                "record an opt-out the subscriber asked for (asks y/n; Ctrl-O in the composer)",
            ),
        ],
    ),
    (
        "Thread",
        &[
            ("↑↓ / j k", "scroll (older history loads on the way up)"),
            ("PgUp PgDn / g G", "page, oldest, newest"),
            ("i / Enter", "write a reply"),
            ("Esc", "back to the inbox"),
        ],
    ),
    (
        "Composer",
        &[
            ("Enter", "send"),
            ("Alt-Enter / Ctrl-J", "new line"),
            ("Shift-Enter", "new line (in terminals that report it)"),
            ("Esc", "leave (the draft stays)"),
            ("Ctrl-U / Ctrl-R", "undo / redo"),
        ],
    ),
    (
        "Before a send where attribution is lost",
        &[
            ("r", "reclaim the code and send"),
            ("d", "send from the chosen dedicated code instead"),
            (
                "↑↓ / 1–9",
                "choose among several dedicated codes (a digit sends)",
            ),
            ("Esc", "cancel, keep the text"),
        ],
    ),
    (
        "Ops view (6)",
        &[
            ("↑↓ / j k", "move in the unattributed queue"),
            (
                "Enter / a",
                "assign the message to a tenant (a list to pick from)",
            ),
            ("R", "reload the queue and the tenants"),
            ("Esc / 6 / 1–5", "back to the inbox"),
        ],
    ),
    (
        "Tenant picker (ops)",
        &[
            ("↑↓ / j k", "choose (j k move until something is typed)"),
            ("typing", "narrows the list by name, id, code or keyword"),
            (
                "Backspace / Ctrl-U",
                "delete a character / clear the filter",
            ),
            ("Enter", "assign to the chosen tenant"),
            ("Esc", "cancel"),
        ],
    ),
    (
        "Inbox marks",
        &[
            ("●", "unread"),
            ("S 55123 US", "shared code and its country (D: dedicated)"),
            ("LOST", "replies on this shared code go to another business"),
            ("OPTED OUT", "the subscriber opted out: nothing can be sent"),
            (
                "STOP?",
                "a message reads like an opt-out request: o records it",
            ),
        ],
    ),
    (
        "Preview under the composer",
        &[
            ("✗", "a rule that refuses this message as it stands"),
            ("!", "a notice: it goes out, but read it first"),
        ],
    ),
];

fn ctrl(key: &KeyEvent, c: char) -> bool {
    key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char(c)
}

impl App {
    pub(super) fn on_key(&mut self, key: KeyEvent, fx: &mut Vec<Effect>) {
        if key.kind == KeyEventKind::Release {
            return;
        }
        if ctrl(&key, 'c') {
            return self.quit(fx);
        }
        if let Some(overlay) = self.overlay.take() {
            return self.overlay_key(overlay, key, fx);
        }
        if ctrl(&key, 'r') && self.focus != Focus::Composer {
            fx.push(Effect::ReconnectNow);
            return;
        }
        if self.screen == Screen::Ops {
            return self.ops_key(key, fx);
        }
        if self.search.is_some() {
            return self.search_key(key, fx);
        }
        match self.focus {
            Focus::Composer => self.composer_key(key, fx),
            Focus::Inbox | Focus::Thread => {
                if !self.pane_key(key, fx) {
                    if self.focus == Focus::Inbox {
                        self.inbox_key(key, fx);
                    } else {
                        self.thread_key(key, fx);
                    }
                }
            }
        }
    }

    fn overlay_key(&mut self, overlay: Overlay, key: KeyEvent, fx: &mut Vec<Effect>) {
        match overlay {
            Overlay::Help { scroll } => match key.code {
                KeyCode::Esc | KeyCode::Enter | KeyCode::Char('?' | 'q') => {}
                KeyCode::Down | KeyCode::Char('j') | KeyCode::PageDown => {
                    let rows = HELP.iter().map(|(_, k)| k.len() + 2).sum::<usize>() as u16;
                    self.overlay = Some(Overlay::Help {
                        scroll: (scroll + 1).min(rows),
                    });
                }
                KeyCode::Up | KeyCode::Char('k') | KeyCode::PageUp => {
                    self.overlay = Some(Overlay::Help {
                        scroll: scroll.saturating_sub(1),
                    });
                }
                _ => self.overlay = Some(Overlay::Help { scroll }),
            },
            Overlay::ConfirmQuit { unsent } => match key.code {
                KeyCode::Char('y' | 'Y' | 'q') => fx.push(Effect::Quit),
                KeyCode::Char('n' | 'N') | KeyCode::Esc => {}
                _ => self.overlay = Some(Overlay::ConfirmQuit { unsent }),
            },
            Overlay::Attribution(prompt) => self.attribution_key(prompt, key, fx),
            Overlay::ConfirmOptOut(prompt) => self.opt_out_key(prompt, key, fx),
            Overlay::AssignTenant(picker) => self.assign_key(picker, key, fx),
            Overlay::CodePicker {
                conversation,
                codes,
                mut selected,
            } => match key.code {
                KeyCode::Esc => {}
                KeyCode::Enter => {
                    if let Some(code) = codes.get(selected) {
                        let code = code.code.clone();
                        self.set_code(&conversation, &code, fx);
                    }
                }
                KeyCode::Down | KeyCode::Char('j') => {
                    selected = (selected + 1).min(codes.len().saturating_sub(1));
                    self.overlay = Some(Overlay::CodePicker {
                        conversation,
                        codes,
                        selected,
                    });
                }
                KeyCode::Up | KeyCode::Char('k') => {
                    selected = selected.saturating_sub(1);
                    self.overlay = Some(Overlay::CodePicker {
                        conversation,
                        codes,
                        selected,
                    });
                }
                _ => {
                    self.overlay = Some(Overlay::CodePicker {
                        conversation,
                        codes,
                        selected,
                    })
                }
            },
        }
    }

    /// The question before a send where attribution is lost: reclaim, or send from one of
    /// the dedicated codes (chosen with the arrows, or by its number), or cancel.
    fn attribution_key(&mut self, mut p: AttributionPrompt, key: KeyEvent, fx: &mut Vec<Effect>) {
        let n = p.alternatives.len();
        let pick = match key.code {
            KeyCode::Char('r') => return self.send_now(&p.conversation, true, None, fx),
            KeyCode::Char('d') if n > 0 => Some(p.selected.min(n - 1)),
            KeyCode::Char(c @ '1'..='9') if ((c as u8 - b'1') as usize) < n => {
                Some((c as u8 - b'1') as usize)
            }
            KeyCode::Down | KeyCode::Char('j') => {
                p.selected = (p.selected + 1).min(n.saturating_sub(1));
                None
            }
            KeyCode::Up | KeyCode::Char('k') => {
                p.selected = p.selected.saturating_sub(1);
                None
            }
            KeyCode::Esc => {
                return self.notify(Tone::Info, "Not sent; the text is still in the composer");
            }
            _ => None,
        };
        match pick {
            Some(i) => {
                let code = p.alternatives[i].clone();
                self.send_now(&p.conversation, false, Some(code), fx);
            }
            None => self.overlay = Some(Overlay::Attribution(p)),
        }
    }

    fn search_key(&mut self, key: KeyEvent, fx: &mut Vec<Effect>) {
        let Some(q) = self.search.as_mut() else {
            return;
        };
        match key.code {
            KeyCode::Esc => self.search = None,
            KeyCode::Enter => {
                let q = self.search.take().unwrap_or_default();
                self.apply_query(q, fx);
            }
            KeyCode::Backspace => {
                q.pop();
            }
            KeyCode::Char('u') if key.modifiers.contains(KeyModifiers::CONTROL) => q.clear(),
            KeyCode::Char(c)
                if !key.modifiers.contains(KeyModifiers::CONTROL) && q.chars().count() < 100 =>
            {
                q.push(c);
            }
            _ => {}
        }
    }

    fn composer_key(&mut self, key: KeyEvent, fx: &mut Vec<Effect>) {
        let alt_or_shift = key
            .modifiers
            .intersects(KeyModifiers::ALT | KeyModifiers::SHIFT);
        match key.code {
            KeyCode::Esc => self.focus_on(Focus::Thread, fx),
            KeyCode::Tab => self.focus_on(Focus::Inbox, fx),
            KeyCode::BackTab => self.focus_on(Focus::Thread, fx),
            KeyCode::Char('o') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                self.ask_opt_out()
            }
            _ if self.composer_closed().is_some() => {
                let why = self.composer_closed().unwrap_or_default();
                self.notify(Tone::Warn, format!("Closed: {why}"));
            }
            KeyCode::Enter if !alt_or_shift => self.send(fx),
            _ if self.composer.is_locked() => {
                self.notify(
                    Tone::Info,
                    "Sending… the text can change once the engine answers",
                );
            }
            KeyCode::Enter => {
                self.composer.newline();
                self.schedule_preview(fx);
            }
            KeyCode::Char('j') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                self.composer.newline();
                self.schedule_preview(fx);
            }
            _ => {
                if self.composer.input(key) {
                    self.schedule_preview(fx);
                }
            }
        }
    }

    /// Keys shared by the inbox and the thread. True when the key was used.
    fn pane_key(&mut self, key: KeyEvent, fx: &mut Vec<Effect>) -> bool {
        if key.modifiers.contains(KeyModifiers::CONTROL) {
            return false;
        }
        match key.code {
            KeyCode::Char('q') => self.quit(fx),
            KeyCode::Char('?') => self.overlay = Some(Overlay::Help { scroll: 0 }),
            KeyCode::Tab => self.cycle_focus(true, fx),
            KeyCode::BackTab => self.cycle_focus(false, fx),
            KeyCode::Char('/') => {
                self.search = Some(self.inbox.query.clone().unwrap_or_default());
            }
            KeyCode::Char(c @ '1'..='5') => {
                let view = View::EVERY[(c as u8 - b'1') as usize];
                self.set_view(view, fx);
            }
            KeyCode::Char('6') => self.toggle_ops(fx),
            KeyCode::Char('t') => self.switch_tenant(1, fx),
            KeyCode::Char('T') => self.switch_tenant(-1, fx),
            KeyCode::Char('r') => self.toggle_resolved(fx),
            KeyCode::Char('u') => self.mark_unread(fx),
            KeyCode::Char('a') => self.assign_to_me(fx),
            KeyCode::Char('c') => self.pick_code(fx),
            KeyCode::Char('o') => self.ask_opt_out(),
            KeyCode::Char('s') => self.toggle_subscriber_pane(fx),
            _ => return false,
        }
        true
    }

    fn inbox_key(&mut self, key: KeyEvent, fx: &mut Vec<Effect>) {
        let page = crate::client::ui::layout::inbox_page(self);
        let half = (page / 2).max(1) as isize;
        match key.code {
            KeyCode::Down | KeyCode::Char('j') => self.inbox.move_by(1, page),
            KeyCode::Up | KeyCode::Char('k') => self.inbox.move_by(-1, page),
            KeyCode::PageDown => self.inbox.move_by(page as isize, page),
            KeyCode::PageUp => self.inbox.move_by(-(page as isize), page),
            KeyCode::Char('d') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                self.inbox.move_by(half, page)
            }
            KeyCode::Char('u') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                self.inbox.move_by(-half, page)
            }
            KeyCode::Home | KeyCode::Char('g') => self.inbox.select_index(0, page),
            KeyCode::End | KeyCode::Char('G') => self
                .inbox
                .select_index(self.inbox.len().saturating_sub(1), page),
            KeyCode::Enter | KeyCode::Right | KeyCode::Char('l') => self.open_selected(fx),
            KeyCode::Esc if self.inbox.query.is_some() => self.apply_query(String::new(), fx),
            _ => {}
        }
        self.load_more_if_needed(fx);
    }

    fn thread_key(&mut self, key: KeyEvent, fx: &mut Vec<Effect>) {
        let page = crate::client::ui::layout::thread_page(self).max(2) - 1;
        match key.code {
            KeyCode::Up | KeyCode::Char('k') => self.scroll_thread(-1, fx),
            KeyCode::Down | KeyCode::Char('j') => self.scroll_thread(1, fx),
            KeyCode::PageUp => self.scroll_thread(-(page as isize), fx),
            KeyCode::PageDown => self.scroll_thread(page as isize, fx),
            KeyCode::Home | KeyCode::Char('g') => {
                self.thread_to_top();
                self.load_older(fx);
            }
            KeyCode::End | KeyCode::Char('G') => {
                if let Some(t) = self.thread.as_mut() {
                    t.scroll = super::thread::Scroll::Bottom;
                }
            }
            KeyCode::Enter | KeyCode::Char('i') => self.focus_on(Focus::Composer, fx),
            KeyCode::Esc | KeyCode::Left | KeyCode::Char('h') => self.focus_on(Focus::Inbox, fx),
            _ => {}
        }
    }

    fn cycle_focus(&mut self, forward: bool, fx: &mut Vec<Effect>) {
        let order: &[Focus] = if self.thread.is_some() {
            &[Focus::Inbox, Focus::Thread, Focus::Composer]
        } else {
            &[Focus::Inbox]
        };
        let i = order.iter().position(|f| *f == self.focus).unwrap_or(0);
        let n = order.len();
        let next = if forward {
            (i + 1) % n
        } else {
            (i + n - 1) % n
        };
        self.focus_on(order[next], fx);
    }
}

#[cfg(test)]
mod tests {
    use super::HELP;

    /// `docs/client.md` lists every key of the help overlay, word for word.
    #[test]
    fn the_client_guide_lists_every_key_of_the_help() {
        let guide = include_str!("../../../docs/client.md");
        for (section, keys) in HELP {
            assert!(
                guide.contains(&format!("### {section}\n")),
                "docs/client.md has no section {section:?}"
            );
            for (key, what) in *keys {
                let row = format!("| `{key}` | {what} |");
                assert!(guide.contains(&row), "docs/client.md lacks the row {row}");
            }
        }
    }
}
