//! Fan-out of events to connections, and who subscribes to which session.
//!
//! Each connection has a bounded queue drained by its writer thread. An
//! event is serialized once and the same `Arc<str>` line is pushed to every
//! target with `try_send`: a full queue means a client that stopped
//! reading, and that connection is shut down (its reader sees EOF and
//! cleans up) so that nobody else ever waits for it.
//!
//! Locks: one `RwLock` over the table; publishing takes the read lock and
//! never blocks inside it (`try_send` only).

use std::collections::{HashMap, HashSet};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::sync::Arc;

use std::io::Write;
use std::os::unix::io::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};

use crossbeam_channel::{unbounded, Receiver, Sender};
use parking_lot::{Mutex, RwLock};

use crate::protocol::{Event, RequestId};

pub type ConnId = u64;
/// One serialized event line, shared by every queue it is pushed to.
pub type Line = Arc<str>;

struct Conn {
    /// The queue's only sender: dropping the connection ends its writer.
    tx: Sender<Line>,
    out: Arc<Outbox>,
    sessions: HashSet<String>,
}

/// Where a connection's events go: straight to its socket when nothing is
/// waiting (one thread hop fewer for a streamed token), else to the queue
/// its writer thread drains.
///
/// Order is kept by `pending`, the lines queued and not yet written: a line
/// is written directly only under `wire` and only when `pending` is 0; the
/// writer holds `wire` for each line it writes and counts it down after.
/// A publisher never blocks on a slow client: it only `try_lock`s `wire`,
/// writes with `MSG_DONTWAIT`, and queues what does not fit.
pub struct Outbox {
    /// The socket, shared with the connection's threads (one descriptor
    /// per client).
    stream: Arc<UnixStream>,
    wire: Mutex<()>,
    pending: AtomicUsize,
}

impl Outbox {
    /// Sends or queues `line`; `true` when the queue is full (a client that
    /// stopped reading). A closed socket counts as delivered: the
    /// connection is going away.
    fn push(&self, tx: &Sender<Line>, line: &Line, limit: usize) -> bool {
        if let Some(_wire) = self.wire.try_lock() {
            if self.pending.load(Ordering::SeqCst) == 0 {
                let bytes = line.as_bytes();
                // SAFETY: send reads `len` bytes from a live buffer; the fd
                // stays open while `stream` is borrowed.
                let n = unsafe {
                    libc::send(
                        self.stream.as_raw_fd(),
                        bytes.as_ptr().cast(),
                        bytes.len(),
                        libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                    )
                };
                if n == bytes.len() as isize {
                    return false;
                }
                if n < 0 {
                    let e = std::io::Error::last_os_error();
                    if e.kind() != std::io::ErrorKind::WouldBlock {
                        return false;
                    }
                }
                // A partial write: the rest goes first in the queue.
                let rest: Line = line[n.max(0) as usize..].into();
                self.pending.fetch_add(1, Ordering::SeqCst);
                let _ = tx.send(rest);
                return false;
            }
        }
        if self.pending.load(Ordering::SeqCst) >= limit {
            return true;
        }
        self.pending.fetch_add(1, Ordering::SeqCst);
        let _ = tx.send(line.clone());
        false
    }

    /// The writer thread's loop: writes queued lines until every sender is
    /// gone, then shuts the socket down.
    pub fn drain(&self, rx: &Receiver<Line>) {
        let _ = self.stream.set_write_timeout(Some(WRITE_TIMEOUT));
        for line in rx {
            let written = {
                let _wire = self.wire.lock();
                let r = (&*self.stream).write_all(line.as_bytes());
                self.pending.fetch_sub(1, Ordering::SeqCst);
                r
            };
            if written.is_err() {
                break;
            }
        }
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

/// A client that does not take a line within this long is gone.
const WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

#[derive(Default)]
struct Table {
    conns: HashMap<ConnId, Conn>,
    subscribers: HashMap<String, HashSet<ConnId>>,
}

/// The registry of connection queues and subscriptions.
pub struct Hub {
    table: RwLock<Table>,
    queue_len: usize,
}

impl Hub {
    pub fn new(queue_len: usize) -> Hub {
        Hub {
            table: RwLock::new(Table::default()),
            queue_len,
        }
    }

    /// Registers a connection; its writer thread drains the returned queue.
    ///
    /// The queue is unbounded in type but limited by [`push`] to
    /// `queue_len`: a bounded channel would allocate all its slots up
    /// front (96 KiB per idle client at the default 4096).
    pub fn register(&self, id: ConnId, stream: Arc<UnixStream>) -> (Arc<Outbox>, Receiver<Line>) {
        let (tx, rx) = unbounded();
        let out = Arc::new(Outbox {
            stream,
            wire: Mutex::new(()),
            pending: AtomicUsize::new(0),
        });
        self.table.write().conns.insert(
            id,
            Conn {
                tx,
                out: out.clone(),
                sessions: HashSet::new(),
            },
        );
        (out, rx)
    }

    /// Forgets a connection. Its queue's sender is dropped, so its writer
    /// thread drains what is queued and exits.
    pub fn unregister(&self, id: ConnId) {
        let mut t = self.table.write();
        if let Some(conn) = t.conns.remove(&id) {
            for s in conn.sessions {
                if let Some(set) = t.subscribers.get_mut(&s) {
                    set.remove(&id);
                    if set.is_empty() {
                        t.subscribers.remove(&s);
                    }
                }
            }
        }
    }

    pub fn connections(&self) -> usize {
        self.table.read().conns.len()
    }

    pub fn subscribe(&self, id: ConnId, session: &str) {
        let mut t = self.table.write();
        let Some(conn) = t.conns.get_mut(&id) else {
            return;
        };
        if conn.sessions.insert(session.to_string()) {
            t.subscribers
                .entry(session.to_string())
                .or_default()
                .insert(id);
        }
    }

    pub fn unsubscribe(&self, id: ConnId, session: &str) {
        let mut t = self.table.write();
        if let Some(conn) = t.conns.get_mut(&id) {
            conn.sessions.remove(session);
        }
        if let Some(set) = t.subscribers.get_mut(session) {
            set.remove(&id);
            if set.is_empty() {
                t.subscribers.remove(session);
            }
        }
    }

    /// Drops every subscription to a deleted session.
    pub fn forget_session(&self, session: &str) {
        let mut t = self.table.write();
        if let Some(set) = t.subscribers.remove(session) {
            for id in set {
                if let Some(conn) = t.conns.get_mut(&id) {
                    conn.sessions.remove(session);
                }
            }
        }
    }

    /// Sends an event to one connection.
    pub fn send(&self, conn: ConnId, event: &Event, id: Option<&RequestId>) {
        let line: Line = event.to_line(id).into();
        let failed = {
            let t = self.table.read();
            match t.conns.get(&conn) {
                Some(c) => c.out.push(&c.tx, &line, self.queue_len).then_some(conn),
                None => None,
            }
        };
        self.drop_slow(failed);
    }

    /// Sends an event to every connection subscribed to `session`; returns
    /// how many it was queued for.
    pub fn publish(&self, session: &str, event: &Event, id: Option<&RequestId>) -> usize {
        let line: Line = event.to_line(id).into();
        let (reached, failed): (usize, Vec<ConnId>) = {
            let t = self.table.read();
            let Some(set) = t.subscribers.get(session) else {
                return 0;
            };
            let failed = set
                .iter()
                .filter(|c| {
                    t.conns
                        .get(c)
                        .is_some_and(|conn| conn.out.push(&conn.tx, &line, self.queue_len))
                })
                .copied()
                .collect::<Vec<_>>();
            (set.len() - failed.len(), failed)
        };
        for c in failed {
            self.drop_slow(Some(c));
        }
        reached
    }

    /// Sends an event to every connection.
    pub fn broadcast(&self, event: &Event) {
        let line: Line = event.to_line(None).into();
        let failed: Vec<ConnId> = {
            let t = self.table.read();
            t.conns
                .iter()
                .filter(|(_, c)| c.out.push(&c.tx, &line, self.queue_len))
                .map(|(id, _)| *id)
                .collect()
        };
        for c in failed {
            self.drop_slow(Some(c));
        }
    }

    /// Closes every connection after what is queued for it is written:
    /// the queues' senders are dropped, so each writer drains and then
    /// shuts its socket down.
    pub fn close_all(&self) {
        let mut t = self.table.write();
        t.conns.clear();
        t.subscribers.clear();
    }

    /// Disconnects a client whose queue is full: it stopped reading.
    fn drop_slow(&self, conn: Option<ConnId>) {
        let Some(conn) = conn else { return };
        let stream = self
            .table
            .read()
            .conns
            .get(&conn)
            .map(|c| c.out.stream.clone());
        if let Some(stream) = stream {
            log::warn!(
                "connection {conn}: more than {} events queued (the client stopped reading); disconnecting it",
                self.queue_len
            );
            let _ = stream.shutdown(Shutdown::Both);
        }
        self.unregister(conn);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publishes_to_subscribers_only_and_drops_slow_clients() {
        use std::io::Read;
        let hub = Hub::new(2);
        let (a, a_peer) = UnixStream::pair().unwrap();
        let (b, b_peer) = UnixStream::pair().unwrap();
        let (_out_a, _ra) = hub.register(1, Arc::new(a));
        let (_out_b, _rb) = hub.register(2, Arc::new(b));
        hub.subscribe(1, "s");
        hub.publish("s", &Event::Pong, None);
        // Nothing was queued, so the line went straight to the socket.
        let mut buf = [0u8; 64];
        let n = (&a_peer).read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"{\"event\":\"pong\"}\n");
        // Connection 2 never reads: once its socket buffer is full, lines
        // queue, and past the limit it is dropped; 1 stays.
        hub.subscribe(2, "s");
        let big = Event::error(
            crate::protocol::ErrorCode::Internal,
            "x".repeat(64 << 10),
            None,
        );
        let mut sent = 0;
        while hub.connections() == 2 && sent < 1000 {
            hub.send(2, &big, None);
            sent += 1;
        }
        assert_eq!(
            hub.connections(),
            1,
            "the slow client was dropped after {sent} lines"
        );
        let mut rest = Vec::new();
        (&b_peer).read_to_end(&mut rest).unwrap();
        assert!(!rest.is_empty(), "it got what fitted, then EOF");
    }
}
