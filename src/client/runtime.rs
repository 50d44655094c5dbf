//! The loop that joins the App to the world: terminal in, network in, timers in; effects out;
//! one draw per batch of events.
//!
//! Every source feeds one channel. The loop waits for an event, drains whatever else is
//! queued, applies it all to the App, carries out the effects, and draws once if the App
//! says something changed — never on a timer of its own (the one-second tick only redraws
//! when a relative time on screen would read differently).

use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use futures_util::StreamExt;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use ratatui::crossterm::event::{
    self as term, DisableBracketedPaste, EnableBracketedPaste, KeyEventKind,
    KeyboardEnhancementFlags, PopKeyboardEnhancementFlags, PushKeyboardEnhancementFlags,
};
use ratatui::crossterm::{execute, terminal};
use tokio::sync::mpsc;

use super::ClientOptions;
use super::app::{App, AppConfig, Effect, Event};
use super::net::{self, NetCommand};
use super::ui;

/// Most events applied before a draw, so a flood never starves the screen.
const BATCH: usize = 2_000;

/// Puts the terminal back however the loop ends.
struct Restore {
    keyboard: bool,
}

impl Drop for Restore {
    fn drop(&mut self) {
        let mut out = std::io::stdout();
        if self.keyboard {
            let _ = execute!(out, PopKeyboardEnhancementFlags);
        }
        let _ = execute!(out, DisableBracketedPaste);
        ratatui::restore();
    }
}

pub async fn run(options: ClientOptions) -> anyhow::Result<()> {
    // Phone-number metadata takes a moment to load: do it before the first row needs it.
    tokio::task::spawn_blocking(crate::domain::phone::warm);
    let (tx, mut rx) = mpsc::unbounded_channel::<Event>();
    let tls = net::tls_config(&options.ca_certs).map_err(|e| anyhow::anyhow!(e))?;
    let net = net::spawn_with_tls(options.url.clone(), options.token.clone(), tls, tx.clone());

    let mut terminal = ratatui::try_init().context("cannot set up the terminal")?;
    // Shift-Enter is only told apart from Enter by terminals with the kitty keyboard protocol.
    let keyboard = matches!(terminal::supports_keyboard_enhancement(), Ok(true))
        && execute!(
            std::io::stdout(),
            PushKeyboardEnhancementFlags(KeyboardEnhancementFlags::DISAMBIGUATE_ESCAPE_CODES)
        )
        .is_ok();
    let _restore = Restore { keyboard };
    let _ = execute!(std::io::stdout(), EnableBracketedPaste);

    let size = terminal.size().context("cannot read the terminal size")?;
    let mut app = App::new(AppConfig {
        url: net::ws_url(&options.url),
        bell: options.bell,
        tz: TimeZone::system(),
        now: Timestamp::now(),
        size: (size.width, size.height),
    });

    let input = tokio::spawn(read_terminal(tx.clone()));
    let ticker = tokio::spawn(tick(tx.clone()));

    let mut quit = false;
    while !quit {
        if app.take_dirty() {
            terminal
                .draw(|f| ui::draw(f, &app))
                .context("cannot draw")?;
        }
        let Some(first) = rx.recv().await else { break };
        let mut effects = app.update(first);
        let mut n = 1;
        while n < BATCH {
            let Ok(ev) = rx.try_recv() else { break };
            effects.extend(app.update(ev));
            n += 1;
        }
        let mut bell = false;
        for fx in effects {
            match fx {
                Effect::Call { id, method, params } => {
                    let _ = net.commands.send(NetCommand::Call {
                        id,
                        method: method.to_string(),
                        params,
                    });
                }
                Effect::Schedule { after, timer } => {
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(after).await;
                        let _ = tx.send(Event::Timer(timer));
                    });
                }
                Effect::Bell => bell = true,
                Effect::ReconnectNow => {
                    let _ = net.commands.send(NetCommand::ReconnectNow);
                }
                Effect::Quit => quit = true,
            }
        }
        if bell {
            // One bell per batch, however many messages arrived in it.
            let mut out = std::io::stdout();
            let _ = out.write_all(b"\x07").and_then(|_| out.flush());
        }
    }

    input.abort();
    ticker.abort();
    let _ = net.commands.send(NetCommand::Shutdown);
    let _ = tokio::time::timeout(Duration::from_secs(1), net.task).await;
    Ok(())
}

async fn read_terminal(tx: mpsc::UnboundedSender<Event>) {
    let mut events = term::EventStream::new();
    while let Some(ev) = events.next().await {
        let ev = match ev {
            Ok(term::Event::Key(k)) if k.kind != KeyEventKind::Release => Event::Key(k),
            Ok(term::Event::Paste(s)) => Event::Paste(s),
            Ok(term::Event::Resize(w, h)) => Event::Resize(w, h),
            Ok(_) => continue,
            Err(e) => {
                tracing::error!(error = %e, "terminal input failed");
                break;
            }
        };
        if tx.send(ev).is_err() {
            break;
        }
    }
}

async fn tick(tx: mpsc::UnboundedSender<Event>) {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        every.tick().await;
        if tx.send(Event::Tick(Timestamp::now())).is_err() {
            break;
        }
    }
}
