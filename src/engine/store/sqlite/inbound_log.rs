//! The carrier ids of recent inbound messages, also kept in a file beside the database, so
//! that a start reads them in one sequential read.
//!
//! The router remembers the carrier ids of the last 500 000 inbound messages
//! (`engine::recent_inbound`) and reads them back at every start. From the narrow index
//! `messages_in_by_id` that was most of a 4.2–4.5 s cold start on a store grown message by
//! message: the index's pages lie between everyone else's, one random read each
//! (docs/benchmarks.md, seventh and eighth series). So every commit's new inbound entries are also appended to
//! `recent-inbound.log`, written behind (no fsync: the database stays the only durable
//! record), and a start reads the file and then, from the index, only what is newer than the
//! file's last entry.
//!
//! **Why that finds everything.** Entries are appended in commit order, and the writer checks
//! that each entry's message id is greater than the one before (ids are UUID v7: time order).
//! Each block of entries carries a CRC over the file's nonce and its bytes; a start trusts the
//! blocks up to the first one that does not check — whatever a crash, a torn write or a
//! power loss left — and reads from the index every inbound message with an id after the last
//! trusted entry. Every stored inbound message is thus either in a trusted block or after it.
//! A file that does not check from its start, or whose nonce is not the one recorded in the
//! database (`marks.recent_inbound_log`: the file belongs to another store, or the database
//! was written meanwhile by a process that does not keep the file), is not used: the start
//! reads the whole window from the index, as it always did, and writes a new file. An id not
//! greater than the last one (a clock set back) deletes that row in the transaction that
//! stores it, and nothing more is appended: the next start rebuilds the file.
//! An entry of the file whose message is no longer stored does no harm: the router confirms
//! every remembered id against the store before it trusts it.
//!
//! Only an engine keeps the file ([`InboundLog::start`] runs from `Store::load`); it holds
//! `engine.lock` in the data directory while it runs, so that two engines never share one.
//! The writer thread wakes every [`DRAIN`] to append what was committed meanwhile — not at
//! every commit, whose thread would otherwise pay for waking it. What a crash leaves unwritten
//! is read from the index. The file stays small: once its older half holds only entries past
//! the router's window or capacity, the newer half is copied to a new file.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use rusqlite::{Connection, OptionalExtension, params};

use crate::engine::recent_inbound::{WINDOW_MS, uuid_v7_floor};

/// The file, in the data directory.
pub const FILE: &str = "recent-inbound.log";
/// Held by the engine that keeps the file.
pub const LOCK_FILE: &str = "engine.lock";
/// The nonce's row in `marks`.
const MARK: &str = "recent_inbound_log";
const MAGIC: &[u8; 8] = b"SBINLOG1";
/// Magic and nonce.
const HEADER: u64 = 24;
/// Payload length, entry count, CRC.
const BLOCK_HEADER: usize = 12;
/// How often the writer thread appends what was committed.
const DRAIN: std::time::Duration = std::time::Duration::from_millis(100);
/// Entries per block when a whole set is written at once.
const CHUNK: usize = 4096;
/// The file is rewritten once this much of it (and half of it) is no longer needed.
const COMPACT_BYTES: u64 = 1 << 20;
/// A block longer than this is not one the writer made.
const MAX_BLOCK: usize = 64 << 20;

/// (message id, carrier, carrier id)
pub type Entry = (String, String, String);

/// The engine's side of the file: entries of the transaction in progress, and the writer
/// thread that appends each committed block.
pub(super) struct InboundLog {
    pending: Vec<u8>,
    pending_count: u32,
    pending_last: Option<String>,
    /// The newest id committed: every id after it must be greater.
    last: Option<String>,
    nonce: [u8; 16],
    /// The transaction in progress untrusts the file (an id out of order).
    untrusting: bool,
    /// None once the file is no longer trusted (or the writer is gone): nothing is appended.
    tx: Option<mpsc::Sender<Cmd>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _lock: File,
}

enum Cmd {
    Append(Block),
    #[cfg(test)]
    Sync(mpsc::Sender<()>),
}

struct Block {
    bytes: Vec<u8>,
    count: u32,
    /// Time of the newest entry (ms), from its id; 0 if it is not a UUID v7.
    newest_ms: i64,
}

/// What [`InboundLog::start`] read.
pub(super) struct Started {
    pub log: InboundLog,
    /// The recent inbound entries, oldest first, at most the limit asked.
    pub entries: Vec<Entry>,
    /// Where they came from, for the start-up log line.
    pub from_file: usize,
    pub from_index: usize,
}

impl InboundLog {
    /// Reads the newest `limit` recent inbound entries (the file, then the index after its
    /// last entry; or the index alone) and starts keeping the file, to at least that many.
    /// Takes the data directory's engine lock: an error if another engine holds it.
    pub(super) fn start(
        conn: &Connection,
        dir: &Path,
        since_ms: i64,
        limit: usize,
    ) -> Result<Started, super::StoreError> {
        let io = |path: &Path| {
            let path = path.display().to_string();
            move |source| super::StoreError::File { path, source }
        };
        let lock_path = dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(super::StoreError::InUse(format!(
                    "another shortbox engine is running on {} (it holds {}): stop it, reach it with `shortbox connect`, or give this one another --data",
                    dir.display(),
                    lock_path.display()
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(&lock_path)(e)),
        }
        let path = dir.join(FILE);
        let floor = uuid_v7_floor(since_ms);
        let recorded: Option<String> = conn
            .query_row("SELECT value FROM marks WHERE name = ?1", [MARK], |r| {
                r.get(0)
            })
            .optional()?;
        let read = recorded
            .as_deref()
            .and_then(parse_nonce)
            .and_then(|nonce| match read_file(&path, &nonce) {
                Ok(r) => r.map(|r| (nonce, r)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot read the recent inbound file; reading the index instead");
                    None
                }
            });
        // `last`: the newest id in the file once `first` is appended; every entry appended
        // after must be greater (the file may hold entries older than the window).
        let (nonce, mut entries, from_file, writer, first, last) = match read {
            Some((nonce, file)) => {
                let after = match file.entries.last() {
                    Some((id, _, _)) if *id > floor => id.clone(),
                    _ => floor.clone(),
                };
                let tail = index_after(conn, &after)?;
                let last = tail.last().or(file.entries.last()).map(|e| e.0.clone());
                let mut entries: Vec<Entry> = file
                    .entries
                    .into_iter()
                    .filter(|(id, _, _)| *id >= floor)
                    .collect();
                let from_file = entries.len();
                let blocks = encode_blocks(&nonce, &tail);
                entries.extend(tail);
                let writer =
                    Writer::reopen(&path, nonce, file.valid_len, file.blocks).map_err(io(&path))?;
                (nonce, entries, from_file, writer, blocks, last)
            }
            None => {
                let mut entries = index_newest(conn, &floor, limit)?;
                entries.reverse();
                let nonce = *uuid::Uuid::new_v4().as_bytes();
                // Recorded before the file is written: a file with this nonce can only be
                // this one, complete up to wherever it was cut.
                conn.execute(
                    "INSERT INTO marks (name, value) VALUES (?1, ?2) \
                     ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    params![MARK, uuid::Uuid::from_bytes(nonce).simple().to_string()],
                )?;
                let blocks = encode_blocks(&nonce, &entries);
                let writer = Writer::create(&path, nonce).map_err(io(&path))?;
                let last = entries.last().map(|e| e.0.clone());
                (nonce, entries, 0, writer, blocks, last)
            }
        };
        let from_index = entries.len() - from_file;
        if entries.len() > limit {
            entries.drain(..entries.len() - limit);
        }
        let (tx, rx) = mpsc::channel();
        for b in first {
            let _ = tx.send(Cmd::Append(b));
        }
        let thread = std::thread::Builder::new()
            .name("shortbox-inbound-log".into())
            .spawn(move || writer.run(rx, limit))
            .map_err(io(&path))?;
        Ok(Started {
            log: InboundLog {
                pending: Vec::new(),
                pending_count: 0,
                pending_last: None,
                last,
                nonce,
                untrusting: false,
                tx: Some(tx),
                thread: Some(thread),
                _lock: lock,
            },
            entries,
            from_file,
            from_index,
        })
    }

    /// An inbound message with a carrier id, written by the transaction in progress. True if
    /// that transaction must untrust the file ([`untrust`]): the id is not after the one
    /// before, so a start reading the index after the file's last entry would miss it.
    pub(super) fn added(&mut self, id: &str, carrier: &str, carrier_id: &str) -> bool {
        if self.tx.is_none() || self.untrusting {
            return false;
        }
        let before = self.pending_last.as_deref().or(self.last.as_deref());
        if before.is_some_and(|b| id <= b) {
            tracing::warn!(
                id,
                after = before,
                "an inbound message id is not after the one before it (was the clock set back?): the recent inbound file is rebuilt at the next start"
            );
            self.untrusting = true;
            return true;
        }
        encode_entry(&mut self.pending, id, carrier, carrier_id);
        self.pending_count += 1;
        self.pending_last = Some(id.to_string());
        false
    }

    /// The transaction committed: its entries go to the file.
    pub(super) fn committed(&mut self) {
        if self.untrusting {
            // The file is no longer trusted: appending to it would be pointless.
            self.tx = None;
            self.untrusting = false;
        }
        if self.pending_count == 0 {
            return;
        }
        let last = self.pending_last.take();
        let block = seal(
            &self.nonce,
            &self.pending,
            self.pending_count,
            last.as_deref(),
        );
        self.pending.clear();
        self.pending_count = 0;
        self.last = last;
        if let Some(tx) = &self.tx
            && tx.send(Cmd::Append(block)).is_err()
        {
            self.tx = None;
        }
    }

    /// The transaction rolled back: its entries are forgotten.
    pub(super) fn rolled_back(&mut self) {
        self.untrusting = false;
        self.pending.clear();
        self.pending_count = 0;
        self.pending_last = None;
    }

    /// Waits until everything committed so far is in the file.
    #[cfg(test)]
    pub(super) fn sync(&self) {
        if let Some(tx) = &self.tx {
            let (done, wait) = mpsc::channel();
            if tx.send(Cmd::Sync(done)).is_ok() {
                if let Some(t) = &self.thread {
                    t.thread().unpark();
                }
                let _ = wait.recv();
            }
        }
    }
}

impl Drop for InboundLog {
    fn drop(&mut self) {
        // The writer finishes what it was sent, then the lock is released.
        self.tx = None;
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

/// Makes the file untrusted by the next start, in the transaction `conn` is in: for a write
/// the file does not get (an id out of order, a process that does not keep the file).
pub(super) fn untrust(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM marks WHERE name = ?1", [MARK])
        .map(drop)
}

/// Every inbound entry with an id after `after`, oldest first.
fn index_after(conn: &Connection, after: &str) -> Result<Vec<Entry>, rusqlite::Error> {
    conn.prepare(
        "SELECT id, carrier, carrier_id FROM messages \
         WHERE id > ?1 AND direction = 'in' AND carrier_id IS NOT NULL ORDER BY id",
    )?
    .query_map([after], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
    .collect()
}

/// The newest `limit` inbound entries with an id at or after `floor`, newest first.
pub(super) fn index_newest(
    conn: &Connection,
    floor: &str,
    limit: usize,
) -> Result<Vec<Entry>, rusqlite::Error> {
    // From the narrow index `messages_in_by_id` alone (migration 7; the plan is held by
    // tests/store_contract.rs).
    conn.prepare(
        "SELECT id, carrier, carrier_id FROM messages \
         WHERE id >= ?1 AND direction = 'in' AND carrier_id IS NOT NULL \
         ORDER BY id DESC LIMIT ?2",
    )?
    .query_map(params![floor, limit as i64], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })?
    .collect()
}

fn parse_nonce(hex: &str) -> Option<[u8; 16]> {
    uuid::Uuid::try_parse(hex).ok().map(|u| *u.as_bytes())
}

/// The time in an id that is a UUID v7, in ms; 0 otherwise.
fn id_ms(id: &str) -> i64 {
    match uuid::Uuid::try_parse(id) {
        Ok(u) if u.get_version_num() == 7 => (u.as_u128() >> 80) as i64,
        _ => 0,
    }
}

fn put_len(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_len(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

fn encode_entry(out: &mut Vec<u8>, id: &str, carrier: &str, carrier_id: &str) {
    put_str(out, id);
    put_str(out, carrier);
    put_str(out, carrier_id);
}

/// A block: payload length, entry count, CRC of nonce, count and payload; then the payload.
fn seal(nonce: &[u8; 16], payload: &[u8], count: u32, newest: Option<&str>) -> Block {
    let mut bytes = Vec::with_capacity(BLOCK_HEADER + payload.len());
    bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&count.to_le_bytes());
    let crc = Crc32::new()
        .update(nonce)
        .update(&count.to_le_bytes())
        .update(payload)
        .finish();
    bytes.extend_from_slice(&crc.to_le_bytes());
    bytes.extend_from_slice(payload);
    Block {
        bytes,
        count,
        newest_ms: newest.map_or(0, id_ms),
    }
}

fn encode_blocks(nonce: &[u8; 16], entries: &[Entry]) -> Vec<Block> {
    entries
        .chunks(CHUNK)
        .map(|chunk| {
            let mut payload = Vec::new();
            for (id, carrier, carrier_id) in chunk {
                encode_entry(&mut payload, id, carrier, carrier_id);
            }
            seal(
                nonce,
                &payload,
                chunk.len() as u32,
                chunk.last().map(|e| e.0.as_str()),
            )
        })
        .collect()
}

/// A block's place in the file.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Placed {
    offset: u64,
    len: u64,
    count: u32,
    newest_ms: i64,
}

struct FileRead {
    entries: Vec<Entry>,
    /// Bytes from the start of the file up to the end of the last trusted block.
    valid_len: u64,
    blocks: Vec<Placed>,
}

/// The trusted entries of the file: its blocks up to the first one that does not check, as
/// long as each entry's id is greater than the one before. None if the file is missing or
/// its header is not this store's.
fn read_file(path: &Path, nonce: &[u8; 16]) -> std::io::Result<Option<FileRead>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(parse(&bytes, nonce))
}

fn parse(bytes: &[u8], nonce: &[u8; 16]) -> Option<FileRead> {
    if bytes.len() < HEADER as usize || &bytes[..8] != MAGIC || &bytes[8..24] != nonce {
        return None;
    }
    let mut at = HEADER as usize;
    // An entry takes at least 40 bytes of the file (a UUID and two short strings); capacity
    // reserved beyond what is used is never touched.
    let mut entries: Vec<Entry> = Vec::with_capacity(bytes.len() / 40);
    let mut blocks = Vec::new();
    while let Some(head) = bytes.get(at..at + BLOCK_HEADER) {
        let len = u32::from_le_bytes(head[0..4].try_into().unwrap()) as usize;
        let count = u32::from_le_bytes(head[4..8].try_into().unwrap());
        let crc = u32::from_le_bytes(head[8..12].try_into().unwrap());
        if len > MAX_BLOCK {
            break;
        }
        let Some(payload) = bytes.get(at + BLOCK_HEADER..at + BLOCK_HEADER + len) else {
            break;
        };
        let sum = Crc32::new()
            .update(nonce)
            .update(&count.to_le_bytes())
            .update(payload)
            .finish();
        if sum != crc {
            break;
        }
        let before = entries.len();
        let Some(()) = decode(payload, count, &mut entries) else {
            entries.truncate(before);
            break;
        };
        blocks.push(Placed {
            offset: at as u64,
            len: (BLOCK_HEADER + len) as u64,
            count,
            newest_ms: entries.last().map_or(0, |e| id_ms(&e.0)),
        });
        at += BLOCK_HEADER + len;
    }
    Some(FileRead {
        entries,
        valid_len: at as u64,
        blocks,
    })
}

/// Appends a block's entries; None (and the block is not trusted) if it does not decode to
/// exactly `count` entries in increasing id order after those already read.
fn decode(mut payload: &[u8], count: u32, out: &mut Vec<Entry>) -> Option<()> {
    fn len(p: &mut &[u8]) -> Option<usize> {
        let mut n = 0usize;
        for shift in (0..35).step_by(7) {
            let (&b, rest) = p.split_first()?;
            *p = rest;
            n |= ((b & 0x7f) as usize) << shift;
            if b & 0x80 == 0 {
                return Some(n);
            }
        }
        None
    }
    fn string(p: &mut &[u8]) -> Option<String> {
        let n = len(p)?;
        let (s, rest) = p.split_at_checked(n)?;
        *p = rest;
        String::from_utf8(s.to_vec()).ok()
    }
    for _ in 0..count {
        let id = string(&mut payload)?;
        let carrier = string(&mut payload)?;
        let carrier_id = string(&mut payload)?;
        if out.last().is_some_and(|(last, _, _)| id <= *last) {
            return None;
        }
        out.push((id, carrier, carrier_id));
    }
    payload.is_empty().then_some(())
}

/// The writer thread: appends blocks, and keeps the file small.
struct Writer {
    path: PathBuf,
    nonce: [u8; 16],
    file: Option<File>,
    len: u64,
    /// Blocks in the file, oldest first, from the first one still needed.
    blocks: VecDeque<Placed>,
    /// Entries in `blocks`.
    entries: usize,
    /// [`COMPACT_BYTES`], smaller in tests.
    compact_bytes: u64,
}

impl Writer {
    fn create(path: &Path, nonce: [u8; 16]) -> std::io::Result<Writer> {
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .read(true)
            .open(path)?;
        file.write_all(MAGIC)?;
        file.write_all(&nonce)?;
        Ok(Writer {
            path: path.to_path_buf(),
            nonce,
            file: Some(file),
            len: HEADER,
            blocks: VecDeque::new(),
            entries: 0,
            compact_bytes: COMPACT_BYTES,
        })
    }

    /// Continues a file read at start: what follows its last trusted block is cut off.
    fn reopen(
        path: &Path,
        nonce: [u8; 16],
        valid_len: u64,
        blocks: Vec<Placed>,
    ) -> std::io::Result<Writer> {
        let mut file = OpenOptions::new().write(true).read(true).open(path)?;
        file.set_len(valid_len)?;
        file.seek(SeekFrom::Start(valid_len))?;
        let entries = blocks.iter().map(|b| b.count as usize).sum();
        Ok(Writer {
            path: path.to_path_buf(),
            nonce,
            file: Some(file),
            len: valid_len,
            blocks: blocks.into(),
            entries,
            compact_bytes: COMPACT_BYTES,
        })
    }

    fn run(mut self, rx: mpsc::Receiver<Cmd>, capacity: usize) {
        loop {
            let cmd = match rx.try_recv() {
                Ok(cmd) => cmd,
                Err(mpsc::TryRecvError::Empty) => {
                    // Unparked early only to stop, or by a test's sync.
                    std::thread::park_timeout(DRAIN);
                    continue;
                }
                Err(mpsc::TryRecvError::Disconnected) => return,
            };
            match cmd {
                Cmd::Append(block) => {
                    if let Err(e) = self.append(block, capacity) {
                        // What was cut short fails its CRC: a start trusts what comes before
                        // and reads the rest from the index. Appending after it would be
                        // pointless, so the file is given up until the next start.
                        tracing::warn!(path = %self.path.display(), error = %e, "cannot write the recent inbound file; the next start reads the index instead");
                        self.file = None;
                    }
                }
                #[cfg(test)]
                Cmd::Sync(done) => {
                    let _ = done.send(());
                }
            }
        }
    }

    fn append(&mut self, block: Block, capacity: usize) -> std::io::Result<()> {
        let Some(file) = &mut self.file else {
            return Ok(());
        };
        file.write_all(&block.bytes)?;
        let placed = Placed {
            offset: self.len,
            len: block.bytes.len() as u64,
            count: block.count,
            newest_ms: block.newest_ms,
        };
        self.len += placed.len;
        self.entries += placed.count as usize;
        self.blocks.push_back(placed);
        // Blocks no longer needed: the router keeps at most `capacity` entries, none older
        // than its window.
        let horizon = block.newest_ms.saturating_sub(WINDOW_MS);
        while let Some(front) = self.blocks.front().copied()
            && self.blocks.len() > 1
            && (self.entries - front.count as usize >= capacity
                || (front.newest_ms != 0 && front.newest_ms < horizon))
        {
            self.blocks.pop_front();
            self.entries -= front.count as usize;
        }
        let start = self.blocks.front().map_or(self.len, |b| b.offset);
        let unneeded = start - HEADER;
        if unneeded > self.compact_bytes && unneeded > self.len / 2 {
            self.compact(start)?;
        }
        Ok(())
    }

    /// Copies the blocks from `start` on into a new file that replaces this one.
    fn compact(&mut self, start: u64) -> std::io::Result<()> {
        let file = self.file.as_mut().expect("compacting an open file");
        file.seek(SeekFrom::Start(start))?;
        let tmp = self.path.with_extension("log.new");
        let mut next = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .read(true)
            .open(&tmp)?;
        next.write_all(MAGIC)?;
        next.write_all(&self.nonce)?;
        // File to file: the kernel copies (copy_file_range), no buffer the file's size.
        let copied = std::io::copy(&mut Read::by_ref(file).take(self.len - start), &mut next)?;
        if copied != self.len - start {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the file is shorter than what was written to it",
            ));
        }
        std::fs::rename(&tmp, &self.path)?;
        let shift = start - HEADER;
        for b in &mut self.blocks {
            b.offset -= shift;
        }
        self.len -= shift;
        self.file = Some(next);
        Ok(())
    }
}

/// CRC-32 (IEEE 802.3, as zlib's).
struct Crc32(u32);

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

impl Crc32 {
    fn new() -> Crc32 {
        Crc32(!0)
    }

    fn update(mut self, bytes: &[u8]) -> Crc32 {
        for &b in bytes {
            self.0 = CRC_TABLE[((self.0 ^ b as u32) & 0xff) as usize] ^ (self.0 >> 8);
        }
        self
    }

    fn finish(self) -> u32 {
        !self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::store::{MessageExtra, SqliteStore, Store, Write};

    /// An id that sorts after `uuid_v7_floor(0)`, in the order of `n`.
    fn id(n: u32) -> String {
        format!("01900000-0000-7000-8000-{n:012}")
    }

    fn inbound(n: u32) -> Write {
        inbound_with_id(&id(n), n)
    }

    fn inbound_with_id(id: &str, n: u32) -> Write {
        let m = crate::client::testing::inbound(id, "c1", "hi", "2026-11-22T10:00:00.000Z");
        Write::Message(
            Box::new(m),
            MessageExtra {
                carrier: Some("sim".into()),
                carrier_id: Some(format!("SIM-{n}")),
                ..Default::default()
            },
        )
    }

    /// What a start must find: the newest `limit` entries of the index, oldest first.
    fn truth(store: &SqliteStore, limit: usize) -> Vec<Entry> {
        let mut all = index_newest(&store.conn, &uuid_v7_floor(0), limit).unwrap();
        all.reverse();
        all
    }

    fn nonce_row(store: &SqliteStore) -> Option<String> {
        store
            .conn
            .query_row("SELECT value FROM marks WHERE name = ?1", [MARK], |r| {
                r.get(0)
            })
            .optional()
            .unwrap()
    }

    /// An engine's store with `commits` commits of 1–3 inbound messages each, written to
    /// the file, then closed.
    fn engine_store(dir: &Path, commits: u32) -> u32 {
        let mut store = SqliteStore::open(dir).unwrap();
        store.load(0, 0, 1000).unwrap();
        let mut n = 0;
        for c in 0..commits {
            let writes: Vec<_> = (0..1 + c % 3)
                .map(|_| {
                    n += 1;
                    inbound(n)
                })
                .collect();
            store.apply(&writes).unwrap();
        }
        store.inbound_log.as_ref().unwrap().sync();
        n
    }

    /// Starts the file on the store in `dir` (its engine gone) and checks that the start found
    /// exactly what the index holds.
    fn start_checked(dir: &Path) -> (SqliteStore, Started) {
        let store = SqliteStore::open(dir).unwrap();
        let read = InboundLog::start(&store.conn, dir, 0, 1000).unwrap();
        assert_eq!(read.entries, truth(&store, 1000));
        (store, read)
    }

    #[test]
    fn crc_is_zlibs() {
        assert_eq!(Crc32::new().update(b"123456789").finish(), 0xCBF4_3926);
    }

    #[test]
    fn a_start_reads_the_file_and_only_what_is_newer_from_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let n = engine_store(dir.path(), 40);
        let (store, read) = start_checked(dir.path());
        assert_eq!(read.entries.len(), n as usize);
        assert_eq!((read.from_file, read.from_index), (n as usize, 0));
        drop(read);
        // A limit below what is stored keeps the newest.
        let read = InboundLog::start(&store.conn, dir.path(), 0, 7).unwrap();
        assert_eq!(read.entries, truth(&store, 7));
    }

    /// Whatever a crash, a torn write or a power loss leaves of the file — cut anywhere,
    /// garbage over its end or its middle — a start finds exactly what the index holds, and
    /// reads from the index only what comes after the part it trusts.
    #[test]
    fn a_damaged_file_costs_index_reads_never_entries() {
        let dir = tempfile::tempdir().unwrap();
        let n = engine_store(dir.path(), 30) as usize;
        let path = dir.path().join(FILE);
        let whole = std::fs::read(&path).unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let nonce = nonce_row(&store).unwrap();
        let expected = truth(&store, 1000);
        let mut damaged: Vec<(String, Vec<u8>)> = Vec::new();
        for cut in (0..whole.len()).step_by(7).chain([whole.len() - 1]) {
            damaged.push((format!("cut at {cut}"), whole[..cut].to_vec()));
        }
        for at in (HEADER as usize..whole.len()).step_by(53) {
            let mut bytes = whole.clone();
            bytes[at] ^= 0x5a;
            damaged.push((format!("byte {at} flipped"), bytes));
            let mut bytes = whole[..at].to_vec();
            bytes.extend(std::iter::repeat_n(0u8, 4096));
            damaged.push((format!("zeros from {at}"), bytes));
        }
        let mut from_file_seen = std::collections::BTreeSet::new();
        for (what, bytes) in damaged {
            std::fs::write(&path, &bytes).unwrap();
            store
                .conn
                .execute(
                    "UPDATE marks SET value = ?1 WHERE name = ?2",
                    [&nonce, MARK],
                )
                .unwrap();
            let read = InboundLog::start(&store.conn, dir.path(), 0, 1000).unwrap();
            assert_eq!(read.entries, expected, "{what}");
            assert_eq!(read.from_file + read.from_index, n, "{what}");
            from_file_seen.insert(read.from_file);
            drop(read);
            // What the start left (cut back, the rest appended) is whole again.
            let again = InboundLog::start(&store.conn, dir.path(), 0, 1000).unwrap();
            assert_eq!(again.entries, expected, "{what}, then restarted");
            assert_eq!(again.from_file, n, "{what}, then restarted");
        }
        assert!(from_file_seen.len() > 10, "{from_file_seen:?}");
    }

    #[test]
    fn a_file_of_another_store_or_left_behind_by_another_writer_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let n = engine_store(dir.path(), 10);
        // A tool stores inbound messages without keeping the file.
        let mut store = SqliteStore::open(dir.path()).unwrap();
        store.apply(&[inbound(n + 1)]).unwrap();
        assert_eq!(nonce_row(&store), None);
        let read = InboundLog::start(&store.conn, dir.path(), 0, 1000).unwrap();
        assert_eq!(read.entries, truth(&store, 1000));
        assert_eq!(read.from_file, 0);
        drop(read);
        // Another store's file in this directory.
        let other = tempfile::tempdir().unwrap();
        engine_store(other.path(), 3);
        std::fs::copy(other.path().join(FILE), dir.path().join(FILE)).unwrap();
        let read = InboundLog::start(&store.conn, dir.path(), 0, 1000).unwrap();
        assert_eq!(read.entries, truth(&store, 1000));
        assert_eq!(read.from_file, 0);
    }

    /// An id not after the one before (a clock set back) would be missed by a start that
    /// reads the index after the file's last entry: the transaction that stores it also
    /// untrusts the file — even if the engine dies right after that commit — and nothing is
    /// appended any more. A transaction that rolls back untrusts nothing.
    #[test]
    fn an_id_out_of_order_untrusts_the_file_in_its_own_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open(dir.path()).unwrap();
        store.load(0, 0, 1000).unwrap();
        store.apply(&[inbound(10), inbound(11)]).unwrap();
        // Rolled back (the same id twice): the file stays trusted.
        assert!(store.apply(&[inbound(5), inbound(5)]).is_err());
        assert!(nonce_row(&store).is_some());
        store.apply(&[inbound(12)]).unwrap();
        store.apply(&[inbound(6)]).unwrap();
        assert_eq!(nonce_row(&store), None);
        // Dies at once: whatever the writer thread had not done yet is lost.
        drop(store);
        let (store, read) = start_checked(dir.path());
        assert_eq!((read.from_file, read.from_index), (0, 4));
        drop(read);
        // The start wrote a new file, trusted again.
        let read = InboundLog::start(&store.conn, dir.path(), 0, 1000).unwrap();
        assert_eq!((read.from_file, read.from_index), (4, 0));
    }

    #[test]
    fn a_rolled_back_commit_appends_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open(dir.path()).unwrap();
        store.load(0, 0, 1000).unwrap();
        store.apply(&[inbound(1)]).unwrap();
        // The same id again violates the primary key: the whole transaction rolls back.
        assert!(store.apply(&[inbound(2), inbound(1)]).is_err());
        store.apply(&[inbound(3)]).unwrap();
        store.inbound_log.as_ref().unwrap().sync();
        drop(store);
        let (_, read) = start_checked(dir.path());
        assert_eq!((read.from_file, read.from_index), (2, 0));
    }

    #[test]
    fn a_second_engine_on_the_same_data_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = SqliteStore::open(dir.path()).unwrap();
        first.load(0, 0, 10).unwrap();
        let mut second = SqliteStore::open(dir.path()).unwrap();
        let e = second.load(0, 0, 10).unwrap_err().to_string();
        assert!(e.contains("another shortbox engine is running on"), "{e}");
        drop(first);
        second.load(0, 0, 10).unwrap();
    }

    /// The writer keeps the file to about twice what the router can remember, and what it
    /// keeps is the newest.
    #[test]
    fn the_file_is_compacted_to_the_newest_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        let nonce = [7u8; 16];
        let mut w = Writer::create(&path, nonce).unwrap();
        w.compact_bytes = 2_000;
        let mut largest = 0;
        for n in 1..=5_000u32 {
            let entries = [(id(n), "sim".to_string(), format!("SIM-{n}"))];
            for b in encode_blocks(&nonce, &entries) {
                w.append(b, 100).unwrap();
            }
            largest = largest.max(std::fs::metadata(&path).unwrap().len());
        }
        assert!(largest < 20_000, "the file reached {largest} bytes");
        let read = parse(&std::fs::read(&path).unwrap(), &nonce).unwrap();
        assert!(read.entries.len() >= 100, "{}", read.entries.len());
        assert_eq!(read.entries.last().unwrap().0, id(5_000));
        assert_eq!(read.valid_len, std::fs::metadata(&path).unwrap().len());
    }

    #[test]
    fn entries_older_than_the_window_are_not_returned() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open(dir.path()).unwrap();
        store.load(0, 0, 1000).unwrap();
        let v7 = |ms: u64, n: u32| {
            uuid::Uuid::from_u128(((ms as u128) << 80) | (0x7 << 76) | (0x8 << 60) | n as u128)
                .to_string()
        };
        for (n, ms) in [(1, 1_000), (2, 2_000), (3, 3_000)] {
            store.apply(&[inbound_with_id(&v7(ms, n), n)]).unwrap();
        }
        store.inbound_log.as_ref().unwrap().sync();
        drop(store);
        let store = SqliteStore::open(dir.path()).unwrap();
        let read = InboundLog::start(&store.conn, dir.path(), 2_000, 1000).unwrap();
        let ids: Vec<_> = read.entries.iter().map(|e| e.0.clone()).collect();
        assert_eq!(ids, [v7(2_000, 2), v7(3_000, 3)]);
    }
}
