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

use crossbeam_channel::{unbounded, Receiver, Sender};
use parking_lot::RwLock;

use crate::protocol::{Event, RequestId};

pub type ConnId = u64;
/// One serialized event line, shared by every queue it is pushed to.
pub type Line = Arc<str>;

struct Conn {
    tx: Sender<Line>,
    /// The socket, shared with the connection's threads (one descriptor
    /// per client), to shut it down from any thread.
    stream: Arc<UnixStream>,
    sessions: HashSet<String>,
}

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
    pub fn register(&self, id: ConnId, stream: Arc<UnixStream>) -> Receiver<Line> {
        let (tx, rx) = unbounded();
        self.table.write().conns.insert(
            id,
            Conn {
                tx,
                stream,
                sessions: HashSet::new(),
            },
        );
        rx
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
                Some(c) => push(&c.tx, &line, self.queue_len).then_some(conn),
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
                        .is_some_and(|conn| push(&conn.tx, &line, self.queue_len))
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
                .filter(|(_, c)| push(&c.tx, &line, self.queue_len))
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
        let stream = self.table.read().conns.get(&conn).map(|c| c.stream.clone());
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

/// Pushes without blocking; `true` when the queue is full (a slow client).
/// A disconnected queue means the connection is going away anyway.
fn push(tx: &Sender<Line>, line: &Line, limit: usize) -> bool {
    if tx.len() >= limit {
        return true;
    }
    let _ = tx.send(line.clone());
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publishes_to_subscribers_only_and_drops_slow_clients() {
        let hub = Hub::new(2);
        let (a, _a_peer) = UnixStream::pair().unwrap();
        let (b, b_peer) = UnixStream::pair().unwrap();
        let ra = hub.register(1, Arc::new(a));
        let rb = hub.register(2, Arc::new(b));
        hub.subscribe(1, "s");
        hub.publish("s", &Event::Pong, None);
        assert_eq!(&*ra.try_recv().unwrap(), "{\"event\":\"pong\"}\n");
        assert!(rb.try_recv().is_err());
        hub.subscribe(2, "s");
        for _ in 0..3 {
            hub.publish("s", &Event::Pong, None);
        }
        // Connection 2 never read: dropped after its queue filled; so was 1.
        assert_eq!(hub.connections(), 0);
        let mut buf = [0u8; 1];
        use std::io::Read;
        assert_eq!((&b_peer).read(&mut buf).unwrap(), 0, "peer sees EOF");
        drop(rb);
    }
}
