//! TCP connections as `serve` accepts them: a request-head deadline, and a way to discard input.
//!
//! axum's `serve` sets no header-read timeout, so a socket that connects and sends nothing (or
//! half a request head) would be held forever. [`GuardedListener`] wraps every accepted stream in
//! a [`GuardedStream`] that fails its reads once a deadline passes while the connection waits for
//! a request head: [`REQUEST_HEAD_TIMEOUT`] after accept, and again after each answered request
//! (an idle keep-alive connection). While a request is being handled there is no deadline, and a
//! connection upgraded to WebSocket has none at all (the session's heartbeat takes over).
//!
//! The same wrapper lets a WebSocket session that is closing after an oversized frame swallow
//! what the client is still sending (`discard_input`), so the server's close frame is not lost
//! to a TCP reset caused by unread data, and without buffering a frame the server refused.
//!
//! Handlers reach their connection's guard through [`ConnMeta`] (axum's connect info); with a
//! bare `app` there is none, and everything still works without the deadline.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};

/// A connection must send a complete request head within this time (after accept, or after
/// its previous request was answered), or it is dropped.
pub const REQUEST_HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// No deadline (a request is in progress, or the connection was upgraded).
const NO_DEADLINE: u64 = u64::MAX;
/// Most bytes discarded in one read call before yielding to other tasks.
const DISCARD_BUDGET: usize = 256 * 1024;

pub(crate) struct GuardedListener {
    inner: TcpListener,
    timeout: Duration,
}

impl GuardedListener {
    pub(crate) fn new(inner: TcpListener, timeout: Duration) -> GuardedListener {
        GuardedListener { inner, timeout }
    }
}

impl Listener for GuardedListener {
    type Io = GuardedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, addr) = Listener::accept(&mut self.inner).await;
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY for {addr}: {e}");
        }
        let guard = Arc::new(ConnGuard::new(self.timeout));
        (
            GuardedStream {
                inner: stream,
                sleep: Box::pin(tokio::time::sleep_until(guard.deadline())),
                guard,
            },
            addr,
        )
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// Shared between a connection's stream and the handlers of its requests.
pub(crate) struct ConnGuard {
    origin: Instant,
    timeout: Duration,
    /// Milliseconds after `origin`, or [`NO_DEADLINE`].
    deadline_ms: AtomicU64,
    in_flight: AtomicUsize,
    upgraded: AtomicBool,
    discard: AtomicBool,
}

impl ConnGuard {
    fn new(timeout: Duration) -> ConnGuard {
        let origin = Instant::now();
        ConnGuard {
            origin,
            timeout,
            deadline_ms: AtomicU64::new(millis(timeout)),
            in_flight: AtomicUsize::new(0),
            upgraded: AtomicBool::new(false),
            discard: AtomicBool::new(false),
        }
    }

    fn deadline(&self) -> Instant {
        match self.deadline_ms.load(Ordering::Acquire) {
            NO_DEADLINE => self.origin + Duration::from_secs(86_400 * 365),
            ms => self.origin + Duration::from_millis(ms),
        }
    }

    fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.deadline_ms.store(NO_DEADLINE, Ordering::Release);
    }

    fn request_finished(&self) {
        let was = self.in_flight.fetch_sub(1, Ordering::AcqRel);
        if was == 1 && !self.upgraded.load(Ordering::Acquire) {
            let ms = millis(self.origin.elapsed() + self.timeout);
            self.deadline_ms.store(ms, Ordering::Release);
        }
    }

    /// The connection now carries a WebSocket: no request-head deadline any more.
    pub(crate) fn mark_upgraded(&self) {
        self.upgraded.store(true, Ordering::Release);
        self.deadline_ms.store(NO_DEADLINE, Ordering::Release);
    }

    /// From now on, reads swallow whatever arrives and report only the end of the stream.
    pub(crate) fn discard_input(&self) {
        self.discard.store(true, Ordering::Release);
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(NO_DEADLINE - 1)
}

pub(crate) struct GuardedStream {
    inner: TcpStream,
    guard: Arc<ConnGuard>,
    sleep: Pin<Box<Sleep>>,
}

impl GuardedStream {
    fn poll_discard(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut scratch = [0u8; 8192];
        let mut swallowed = 0;
        loop {
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut self.inner).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if buf.filled().is_empty() => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) => {
                    swallowed += buf.filled().len();
                    if swallowed >= DISCARD_BUDGET {
                        cx.waker().wake_by_ref();
                        return Poll::Pending;
                    }
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl AsyncRead for GuardedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.guard.discard.load(Ordering::Acquire) {
            return this.poll_discard(cx);
        }
        if this.guard.deadline_ms.load(Ordering::Acquire) != NO_DEADLINE {
            let deadline = this.guard.deadline();
            if this.sleep.deadline() != deadline {
                this.sleep.as_mut().reset(deadline);
            }
            if this.sleep.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no complete request head within the request-head timeout",
                )));
            }
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for GuardedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The connect info `serve` attaches to every request.
#[derive(Clone)]
pub(crate) struct ConnMeta {
    pub(crate) remote: SocketAddr,
    guard: Arc<ConnGuard>,
}

impl Connected<IncomingStream<'_, GuardedListener>> for ConnMeta {
    fn connect_info(stream: IncomingStream<'_, GuardedListener>) -> Self {
        ConnMeta {
            remote: *stream.remote_addr(),
            guard: stream.io().guard.clone(),
        }
    }
}

/// The guard of the request's connection, when the router runs under `serve`.
pub(crate) struct Conn(pub(crate) Option<ConnMeta>);

impl Conn {
    pub(crate) fn guard(&self) -> Option<Arc<ConnGuard>> {
        self.0.as_ref().map(|m| m.guard.clone())
    }

    pub(crate) fn remote(&self) -> Option<SocketAddr> {
        self.0.as_ref().map(|m| m.remote)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Conn {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Conn(
            parts
                .extensions
                .get::<ConnectInfo<ConnMeta>>()
                .map(|c| c.0.clone()),
        ))
    }
}

/// Middleware: no request-head deadline while a request is being handled.
pub(crate) async fn track_request(request: Request, next: Next) -> Response {
    let guard = request
        .extensions()
        .get::<ConnectInfo<ConnMeta>>()
        .map(|c| c.0.guard.clone());
    let _busy = guard.map(Busy::new);
    next.run(request).await
}

/// Re-arms the deadline when dropped, also if the handler is cancelled.
struct Busy(Arc<ConnGuard>);

impl Busy {
    fn new(guard: Arc<ConnGuard>) -> Busy {
        guard.request_started();
        Busy(guard)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}
