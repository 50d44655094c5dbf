//! Views: small structs that borrow the App and draw one part of the screen, building only
//! what is visible. [`draw`] lays them out; [`layout`] says where each goes.
//!
//! Every string that came from outside passes [`crate::client::sanitize::sanitize`] in these
//! views before it reaches a buffer.

pub mod cells;
pub mod composer;
pub mod inbox;
pub mod layout;
pub mod ops;
pub mod overlays;
pub mod status;
pub mod subscriber;
pub mod theme;
pub mod thread;

use ratatui::Frame;

use crate::client::app::{App, Overlay};
use composer::ComposerView;
use inbox::InboxView;
use ops::{AssignDialog, OpsView};
use overlays::{AttributionDialog, CodePicker, HelpOverlay, QuitDialog};
use status::{StatusBar, TopBar};
use subscriber::{OptOutDialog, SubscriberPane};
use thread::ThreadView;

/// Draws the whole screen for `app`. The App's `size` must match the frame's.
pub fn draw(frame: &mut Frame, app: &App) {
    let a = layout::areas(app);
    frame.render_widget(TopBar { app }, a.top);
    if let Some(r) = a.inbox {
        frame.render_widget(InboxView { app }, r);
    }
    if let Some(r) = a.thread {
        frame.render_widget(ThreadView { app }, r);
    }
    if let Some(r) = a.composer {
        frame.render_widget(ComposerView { app }, r);
    }
    if let Some(r) = a.subscriber {
        frame.render_widget(SubscriberPane { app }, r);
    }
    if let Some(r) = a.ops {
        frame.render_widget(OpsView { app }, r);
    }
    frame.render_widget(StatusBar { app }, a.status);
    let area = frame.area();
    match &app.overlay {
        None => {}
        Some(Overlay::Help { scroll }) => {
            frame.render_widget(HelpOverlay { scroll: *scroll }, area)
        }
        Some(Overlay::ConfirmQuit { unsent }) => {
            frame.render_widget(QuitDialog { unsent: *unsent }, area)
        }
        Some(Overlay::Attribution(prompt)) => {
            frame.render_widget(AttributionDialog { app, prompt }, area)
        }
        Some(Overlay::CodePicker {
            conversation,
            codes,
            selected,
        }) => {
            let current = app
                .inbox
                .get(conversation)
                .or(app.thread.as_ref().map(|t| &t.conversation))
                .map(|c| c.code.as_str());
            frame.render_widget(
                CodePicker {
                    codes,
                    selected: *selected,
                    current,
                },
                area,
            );
        }
        Some(Overlay::ConfirmOptOut(prompt)) => {
            frame.render_widget(OptOutDialog { app, prompt }, area)
        }
        Some(Overlay::AssignTenant(picker)) => frame.render_widget(AssignDialog { picker }, area),
    }
}
