//! The TUI client: a terminal inbox that speaks protocol v1 only.
//!
//! - [`net`]: the network task (connect, sync, resume, reconnect) and its pure session logic.
//! - [`app`]: all state, changed only by the pure `App::update(event) -> effects`.
//! - [`ui`]: views that borrow the App and draw only what is visible.
//! - [`sanitize`]: the one sanitizer every outside string passes before the terminal.
//! - [`text`], [`format`]: widths, wrapping, and how values look.
//! - [`testing`]: fixtures and a harness to drive the App without a socket.
//!
//! The client never imports the engine or the server; embedded mode reaches the engine over
//! a loopback WebSocket like any remote client.

pub mod app;
pub mod format;
pub mod net;
mod runtime;
pub mod sanitize;
#[doc(hidden)]
pub mod testing;
pub mod text;
pub mod ui;

use std::path::Path;

/// How to reach the engine.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// `ws://…/v1/ws` or `wss://…/v1/ws` (a bare `ws://host:port` gets `/v1/ws`).
    pub url: String,
    pub token: String,
    /// Ring the terminal bell on a new inbound message outside the open conversation.
    pub bell: bool,
    /// Where the client writes its log file (`shortbox-client.log.<date>`); none: no log.
    pub log_dir: Option<std::path::PathBuf>,
    /// PEM files of certificate authorities trusted for `wss://` besides the system's (a
    /// private CA).
    pub ca_certs: Vec<std::path::PathBuf>,
}

/// Runs the TUI until the user quits. Blocking; it runs on a thread of its own with its own
/// runtime, so it may be called from `main` directly or from inside a tokio runtime.
pub fn run(options: ClientOptions) -> anyhow::Result<()> {
    let thread = std::thread::Builder::new()
        .name("shortbox-tui".into())
        .spawn(move || {
            let _log = logging(options.log_dir.as_deref());
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(runtime::run(options))
        })?;
    thread
        .join()
        .map_err(|_| anyhow::anyhow!("the terminal client panicked"))?
}

/// Sends this thread's logs to a file (never the terminal): the guards must live as long as
/// the client. With no directory, this thread's logs go nowhere, whatever else is installed.
fn logging(dir: Option<&Path>) -> Box<dyn std::any::Any> {
    use tracing_subscriber::EnvFilter;
    let Some(dir) = dir else {
        return Box::new(tracing::subscriber::set_default(
            tracing::subscriber::NoSubscriber::default(),
        ));
    };
    if std::fs::create_dir_all(dir).is_err() {
        return Box::new(tracing::subscriber::set_default(
            tracing::subscriber::NoSubscriber::default(),
        ));
    }
    let appender = tracing_appender::rolling::daily(dir, "shortbox-client.log");
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let filter = EnvFilter::try_from_env("SHORTBOX_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let subscriber = tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .with_env_filter(filter)
        .finish();
    Box::new((tracing::subscriber::set_default(subscriber), guard))
}
