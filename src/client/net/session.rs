//! One connection's protocol state, without IO: frames in, frames out and events for the App.
//!
//! The cursors (epoch and last applied `seq` of each stream) outlive a connection, so the
//! next one resumes where this one stopped. An event is passed on only when its `seq` is the
//! cursor plus one; anything at or below the cursor is a duplicate and dropped; anything
//! beyond it is a gap, answered by a `sync` of that stream from the cursor (one at a time),
//! while the events in between are dropped until the replay brings them in order.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::{CallId, NetEvent};
use crate::protocol::{
    ApiError, Call, ClientFrame, Event, Hello, ServerFrame, Sync, SyncStream, stream,
};

/// Where this client stands in one stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cursor {
    pub epoch: Option<String>,
    pub seq: Option<u64>,
}

/// Cursors of every stream, kept across connections.
#[derive(Debug, Clone, Default)]
pub struct Cursors(pub HashMap<String, Cursor>);

/// What a frame asks the IO side to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Out {
    Send(ClientFrame),
    Emit(NetEvent),
}

enum Pending {
    Call(CallId),
    Sync(Vec<String>),
}

pub struct Session<'c> {
    cursors: &'c mut Cursors,
    next_req: u64,
    pending: HashMap<u64, Pending>,
    resyncing: HashSet<String>,
    streams: HashSet<String>,
    hello: bool,
}

impl<'c> Session<'c> {
    pub fn new(cursors: &'c mut Cursors) -> Self {
        Session {
            cursors,
            next_req: 1,
            pending: HashMap::new(),
            resyncing: HashSet::new(),
            streams: HashSet::new(),
            hello: false,
        }
    }

    pub fn has_hello(&self) -> bool {
        self.hello
    }

    fn req(&mut self) -> u64 {
        let r = self.next_req;
        self.next_req += 1;
        r
    }

    /// Wraps an App call in a frame with a fresh `req`.
    pub fn call(&mut self, id: CallId, method: String, params: Value) -> ClientFrame {
        let req = self.req();
        self.pending.insert(req, Pending::Call(id));
        ClientFrame::Call(Call {
            req,
            method,
            params,
        })
    }

    /// The connection ended: calls without an answer are lost (the App decides to retry).
    pub fn end(self, reason: &str, out: &mut Vec<Out>) {
        let mut lost: Vec<CallId> = self
            .pending
            .into_values()
            .filter_map(|p| match p {
                Pending::Call(id) => Some(id),
                Pending::Sync(_) => None,
            })
            .collect();
        lost.sort_unstable();
        for call in lost {
            out.push(Out::Emit(NetEvent::CallFailed {
                call,
                reason: reason.to_string(),
            }));
        }
    }

    pub fn on_frame(&mut self, frame: ServerFrame, out: &mut Vec<Out>) {
        match frame {
            ServerFrame::Hello(h) => self.on_hello(h, out),
            ServerFrame::Ev(e) => self.on_event(e, out),
            ServerFrame::Synced(s) => {
                self.pending.remove(&s.req);
                self.resyncing.remove(&s.stream);
                let c = self.cursors.0.entry(s.stream.clone()).or_default();
                if c.epoch.as_deref() != Some(&s.epoch) || c.seq.unwrap_or(0) < s.head {
                    // The replay did not bring us to the head: ask again from where we are.
                    tracing::warn!(stream = %s.stream, head = s.head, cursor = ?c, "synced short of head");
                    self.resync(&s.stream, out);
                } else {
                    out.push(Out::Emit(NetEvent::Synced { stream: s.stream }));
                }
            }
            ServerFrame::Reset(r) => {
                self.pending.remove(&r.req);
                self.resyncing.remove(&r.stream);
                let c = self.cursors.0.entry(r.stream.clone()).or_default();
                c.epoch = Some(r.epoch);
                c.seq = Some(r.head);
                out.push(Out::Emit(NetEvent::Reset {
                    stream: r.stream,
                    reason: r.reason,
                }));
            }
            ServerFrame::Reply(r) => match self.pending.remove(&r.req) {
                Some(Pending::Call(call)) => out.push(Out::Emit(NetEvent::Reply {
                    call,
                    result: r.into_result(),
                })),
                other => {
                    tracing::warn!(req = r.req, "reply to no call");
                    if let Some(p) = other {
                        self.pending.insert(r.req, p);
                    }
                }
            },
            ServerFrame::Live(l) => out.push(Out::Emit(NetEvent::Live(l))),
            ServerFrame::Error(e) => match e.req.and_then(|r| self.pending.remove(&r)) {
                Some(Pending::Call(call)) => out.push(Out::Emit(NetEvent::Reply {
                    call,
                    result: Err(ApiError::new(e.code, e.message)),
                })),
                Some(Pending::Sync(streams)) => {
                    for s in &streams {
                        self.streams.remove(s);
                        self.resyncing.remove(s);
                    }
                    out.push(Out::Emit(NetEvent::Refused {
                        code: e.code,
                        message: format!("{} ({})", e.message, streams.join(", ")),
                    }));
                }
                None => out.push(Out::Emit(NetEvent::Refused {
                    code: e.code,
                    message: e.message,
                })),
            },
        }
    }

    fn on_hello(&mut self, h: Hello, out: &mut Vec<Out>) {
        if self.hello {
            return;
        }
        self.hello = true;
        self.streams = h
            .streams
            .iter()
            .filter(|s| stream::tenant_of(s).is_some() || *s == stream::OPS)
            .cloned()
            .collect();
        let mut names: Vec<String> = self.streams.iter().cloned().collect();
        names.sort();
        out.push(Out::Emit(NetEvent::Connected(h)));
        if !names.is_empty() {
            let req = self.req();
            let streams = names
                .iter()
                .map(|s| {
                    let c = self.cursors.0.get(s).cloned().unwrap_or_default();
                    match (c.epoch, c.seq) {
                        (Some(epoch), Some(after)) => SyncStream {
                            stream: s.clone(),
                            epoch: Some(epoch),
                            after: Some(after),
                        },
                        _ => SyncStream {
                            stream: s.clone(),
                            epoch: None,
                            after: None,
                        },
                    }
                })
                .collect();
            self.pending.insert(req, Pending::Sync(names));
            out.push(Out::Send(ClientFrame::Sync(Sync { req, streams })));
        }
    }

    fn on_event(&mut self, e: Event, out: &mut Vec<Out>) {
        if !self.streams.contains(&e.stream) {
            return;
        }
        let c = self.cursors.0.entry(e.stream.clone()).or_default();
        let (Some(epoch), Some(seq)) = (c.epoch.as_deref(), c.seq) else {
            // Not placed in this stream yet: the reset that places us comes first.
            return;
        };
        if epoch != e.epoch {
            let stream = e.stream.clone();
            self.resync(&stream, out);
        } else if e.seq <= seq {
            // Already applied.
        } else if e.seq == seq + 1 {
            c.seq = Some(e.seq);
            out.push(Out::Emit(NetEvent::Event(e)));
        } else {
            let stream = e.stream.clone();
            self.resync(&stream, out);
        }
    }

    fn resync(&mut self, name: &str, out: &mut Vec<Out>) {
        if !self.resyncing.insert(name.to_string()) {
            return;
        }
        let c = self.cursors.0.get(name).cloned().unwrap_or_default();
        let req = self.req();
        self.pending
            .insert(req, Pending::Sync(vec![name.to_string()]));
        let (epoch, after) = match (c.epoch, c.seq) {
            (Some(e), Some(s)) => (Some(e), Some(s)),
            _ => (None, None),
        };
        out.push(Out::Send(ClientFrame::Sync(Sync {
            req,
            streams: vec![SyncStream {
                stream: name.to_string(),
                epoch,
                after,
            }],
        })));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::testing::{hello, owner};
    use crate::protocol::{Reply, Reset, ResetReason, Synced};
    use serde_json::json;

    fn ev(seq: u64) -> ServerFrame {
        ServerFrame::Ev(Event {
            stream: "tenant:acme".into(),
            epoch: "E".into(),
            seq,
            kind: "message.received".into(),
            ts: "2026-11-22T10:00:00.000Z".into(),
            data: json!({}),
        })
    }

    fn seqs(out: &[Out]) -> Vec<u64> {
        out.iter()
            .filter_map(|o| match o {
                Out::Emit(NetEvent::Event(e)) => Some(e.seq),
                _ => None,
            })
            .collect()
    }

    fn syncs(out: &[Out]) -> Vec<Sync> {
        out.iter()
            .filter_map(|o| match o {
                Out::Send(ClientFrame::Sync(s)) => Some(s.clone()),
                _ => None,
            })
            .collect()
    }

    fn placed(cursors: &mut Cursors, head: u64) {
        cursors.0.insert(
            "tenant:acme".into(),
            Cursor {
                epoch: Some("E".into()),
                seq: Some(head),
            },
        );
    }

    #[test]
    fn hello_syncs_tenant_and_ops_streams_from_the_cursor() {
        let mut cursors = Cursors::default();
        placed(&mut cursors, 41);
        let mut s = Session::new(&mut cursors);
        let mut out = Vec::new();
        let mut h = hello(owner(&[("acme", "Acme Shoes")]));
        h.streams.push("ops".into());
        h.streams.push("something:else".into());
        s.on_frame(ServerFrame::Hello(h), &mut out);
        let sync = &syncs(&out)[0];
        let names: Vec<_> = sync.streams.iter().map(|s| s.stream.as_str()).collect();
        assert_eq!(
            names,
            ["ops", "tenant:acme"],
            "unknown kinds of stream are not synced"
        );
        assert_eq!(sync.streams[1].epoch.as_deref(), Some("E"));
        assert_eq!(sync.streams[1].after, Some(41));
        assert_eq!(
            sync.streams[0].after, None,
            "ops is new: a fresh reset places it"
        );
    }

    #[test]
    fn a_fresh_stream_syncs_with_nulls_and_takes_the_reset() {
        let mut cursors = Cursors::default();
        let mut s = Session::new(&mut cursors);
        let mut out = Vec::new();
        s.on_frame(
            ServerFrame::Hello(hello(owner(&[("acme", "Acme")]))),
            &mut out,
        );
        let sync = syncs(&out).remove(0);
        assert_eq!(sync.streams[0].after, None);
        out.clear();
        s.on_frame(ev(3), &mut out);
        assert!(seqs(&out).is_empty(), "no event before the reset places us");
        s.on_frame(
            ServerFrame::Reset(Reset {
                req: sync.req,
                stream: "tenant:acme".into(),
                epoch: "E".into(),
                head: 57,
                reason: ResetReason::Fresh,
            }),
            &mut out,
        );
        s.on_frame(ev(58), &mut out);
        assert_eq!(seqs(&out), [58]);
        assert!(out.contains(&Out::Emit(NetEvent::Reset {
            stream: "tenant:acme".into(),
            reason: ResetReason::Fresh
        })));
    }

    #[test]
    fn duplicates_drop_and_gaps_resync_once() {
        let mut cursors = Cursors::default();
        placed(&mut cursors, 10);
        let mut s = Session::new(&mut cursors);
        let mut out = Vec::new();
        s.on_frame(
            ServerFrame::Hello(hello(owner(&[("acme", "Acme")]))),
            &mut out,
        );
        out.clear();
        for seq in [9, 10, 11, 11, 13, 14] {
            s.on_frame(ev(seq), &mut out);
        }
        assert_eq!(seqs(&out), [11]);
        let resync = syncs(&out);
        assert_eq!(resync.len(), 1, "one re-sync while one is pending");
        assert_eq!(resync[0].streams[0].after, Some(11));
        out.clear();
        for seq in [12, 13, 14] {
            s.on_frame(ev(seq), &mut out);
        }
        s.on_frame(
            ServerFrame::Synced(Synced {
                req: resync[0].req,
                stream: "tenant:acme".into(),
                epoch: "E".into(),
                head: 14,
            }),
            &mut out,
        );
        s.on_frame(ev(14), &mut out);
        s.on_frame(ev(15), &mut out);
        assert_eq!(seqs(&out), [12, 13, 14, 15]);
        drop(s);
        assert_eq!(cursors.0["tenant:acme"].seq, Some(15));
    }

    #[test]
    fn replies_find_their_call_and_lost_calls_fail() {
        let mut cursors = Cursors::default();
        let mut s = Session::new(&mut cursors);
        let mut out = Vec::new();
        let ClientFrame::Call(a) = s.call(7, "conversations.list".into(), json!({})) else {
            panic!()
        };
        let _ = s.call(8, "messages.send".into(), json!({}));
        s.on_frame(
            ServerFrame::Reply(Reply {
                req: a.req,
                result: Some(json!({"ok": 1})),
                error: None,
            }),
            &mut out,
        );
        assert_eq!(
            out,
            [Out::Emit(NetEvent::Reply {
                call: 7,
                result: Ok(json!({"ok": 1}))
            })]
        );
        out.clear();
        s.end("gone", &mut out);
        assert_eq!(
            out,
            [Out::Emit(NetEvent::CallFailed {
                call: 8,
                reason: "gone".into()
            })]
        );
    }
}
