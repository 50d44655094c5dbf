//! Answering one stream of a `sync`: where the client stands, and replaying what it missed.
//!
//! [`decide`] applies protocol.md's rules to the client's `(epoch, after)` and the stream's
//! position: either replay from `after`, or `reset` with a reason. [`replay`] runs as a task of
//! the session: it reads the position, then either sends `reset`, or pages through the store
//! (`read_events`, 500 at a time) up to the head it read and sends `synced`. The session
//! subscribed the stream to the hub *before* this task read the position and buffers live
//! events meanwhile; the task reports the last `seq` it covered, and the session then sends
//! only buffered events after it. So replay and live meet with no gap and no duplicate.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::writer::Outbound;
use crate::engine::{Engine, StreamPosition};
use crate::protocol::{ApiError, ErrorFrame, Reset, ResetReason, ServerFrame, Synced};

/// Events read from the store per page.
pub(crate) const PAGE: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resume {
    /// Send every event after `after`, then `synced`.
    Replay { after: u64 },
    /// Send `reset` with this reason; the client reloads and continues from `head`.
    Reset(ResetReason),
}

/// protocol.md: `epoch` and `after` go together (either null: `fresh`); otherwise the first
/// that applies wins: `epoch_changed`, `too_old` (`after` before the retained range),
/// `ahead` (`after` past the head).
pub(crate) fn decide(epoch: Option<&str>, after: Option<u64>, position: &StreamPosition) -> Resume {
    let (Some(epoch), Some(after)) = (epoch, after) else {
        return Resume::Reset(ResetReason::Fresh);
    };
    if epoch != position.epoch {
        Resume::Reset(ResetReason::EpochChanged)
    } else if after.saturating_add(1) < position.first {
        Resume::Reset(ResetReason::TooOld)
    } else if after > position.head {
        Resume::Reset(ResetReason::Ahead)
    } else {
        Resume::Replay { after }
    }
}

/// One stream of one `sync` request.
pub(crate) struct ReplayRequest {
    pub(crate) req: u64,
    pub(crate) stream: Arc<str>,
    pub(crate) epoch: Option<String>,
    pub(crate) after: Option<u64>,
    /// Tells the session which of its replays of this stream finished.
    pub(crate) generation: u64,
}

/// What a replay task reports to its session.
#[derive(Debug)]
pub(crate) struct ReplayDone {
    pub(crate) stream: Arc<str>,
    pub(crate) generation: u64,
    /// The last `seq` the client has now (replayed, or the head of a reset); `None` when the
    /// stream could not be synced (an `error` frame was sent).
    pub(crate) covered: Option<u64>,
}

pub(crate) async fn replay(
    engine: Engine,
    out: mpsc::Sender<Outbound>,
    done: mpsc::UnboundedSender<ReplayDone>,
    request: ReplayRequest,
) {
    let covered = match run(&engine, &out, &request).await {
        Ok(Some(covered)) => Some(covered),
        // The writer is gone: the session is ending.
        Ok(None) => return,
        Err(e) => {
            let frame = ServerFrame::Error(ErrorFrame {
                req: Some(request.req),
                code: e.code,
                message: format!("cannot sync {}: {}", request.stream, e.message),
            });
            if out.send(Outbound::frame(&frame)).await.is_err() {
                return;
            }
            None
        }
    };
    let _ = done.send(ReplayDone {
        stream: request.stream,
        generation: request.generation,
        covered,
    });
}

/// `Ok(None)` when the writer is gone.
async fn run(
    engine: &Engine,
    out: &mpsc::Sender<Outbound>,
    r: &ReplayRequest,
) -> Result<Option<u64>, ApiError> {
    let position = engine.stream_position(&r.stream).await?;
    let after = match decide(r.epoch.as_deref(), r.after, &position) {
        Resume::Reset(reason) => {
            let frame = ServerFrame::Reset(Reset {
                req: r.req,
                stream: r.stream.to_string(),
                epoch: position.epoch.clone(),
                head: position.head,
                reason,
            });
            return Ok(out
                .send(Outbound::frame(&frame))
                .await
                .ok()
                .map(|()| position.head));
        }
        Resume::Replay { after } => after,
    };
    let mut cursor = after;
    while cursor < position.head {
        let page = engine.read_events(&r.stream, cursor, PAGE).await?;
        let before = cursor;
        for event in page {
            if event.seq <= cursor {
                continue;
            }
            if event.seq > position.head {
                // Committed after the position was read: the hub brings it.
                break;
            }
            if out.send(Outbound::Shared(event.frame)).await.is_err() {
                return Ok(None);
            }
            cursor = event.seq;
        }
        if cursor == before {
            return Err(ApiError::internal(format!(
                "events {}..={} of {} are missing from the store; sync again from your cursor",
                cursor + 1,
                position.head,
                r.stream
            )));
        }
    }
    let frame = ServerFrame::Synced(Synced {
        req: r.req,
        stream: r.stream.to_string(),
        epoch: position.epoch,
        head: cursor,
    });
    Ok(out
        .send(Outbound::frame(&frame))
        .await
        .ok()
        .map(|()| cursor))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn position(epoch: &str, first: u64, head: u64) -> StreamPosition {
        StreamPosition {
            epoch: epoch.into(),
            head,
            first,
        }
    }

    #[test]
    fn resume_rules_follow_the_protocol_in_order() {
        let p = position("E", 11, 57);
        let cases: &[(Option<&str>, Option<u64>, Resume)] = &[
            (None, None, Resume::Reset(ResetReason::Fresh)),
            (Some("E"), None, Resume::Reset(ResetReason::Fresh)),
            (None, Some(41), Resume::Reset(ResetReason::Fresh)),
            (
                Some("X"),
                Some(41),
                Resume::Reset(ResetReason::EpochChanged),
            ),
            // epoch_changed wins over too_old and ahead
            (Some("X"), Some(1), Resume::Reset(ResetReason::EpochChanged)),
            (
                Some("X"),
                Some(99),
                Resume::Reset(ResetReason::EpochChanged),
            ),
            (Some("E"), Some(9), Resume::Reset(ResetReason::TooOld)),
            (Some("E"), Some(10), Resume::Replay { after: 10 }),
            (Some("E"), Some(41), Resume::Replay { after: 41 }),
            (Some("E"), Some(57), Resume::Replay { after: 57 }),
            (Some("E"), Some(58), Resume::Reset(ResetReason::Ahead)),
        ];
        for (epoch, after, want) in cases {
            assert_eq!(
                decide(*epoch, *after, &p),
                *want,
                "epoch {epoch:?} after {after:?}"
            );
        }
    }

    #[test]
    fn an_empty_stream_replays_from_zero() {
        let p = position("E", 1, 0);
        assert_eq!(decide(Some("E"), Some(0), &p), Resume::Replay { after: 0 });
        assert_eq!(
            decide(Some("E"), Some(1), &p),
            Resume::Reset(ResetReason::Ahead)
        );
    }

    #[test]
    fn nothing_retained_means_only_the_head_is_current() {
        // Retention cut everything: first = head + 1.
        let p = position("E", 58, 57);
        assert_eq!(
            decide(Some("E"), Some(57), &p),
            Resume::Replay { after: 57 }
        );
        assert_eq!(
            decide(Some("E"), Some(56), &p),
            Resume::Reset(ResetReason::TooOld)
        );
    }
}
