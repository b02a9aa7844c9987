//! The UNIX socket: binding it safely, accepting clients, and one reader
//! plus one writer thread per connection.
//!
//! Policy: the socket is created owner-only (0600) with no moment in which
//! it is wider; every peer's uid is checked; an existing path is probed and
//! only a stale socket of ours is ever removed. A request line is bounded by
//! `max_line_bytes` (the rest of a longer line is discarded as it arrives,
//! never held); a bad request is answered with an `error` event and the
//! connection goes on.

use std::io::{self, BufRead, BufReader, Write};
use std::net::Shutdown;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::daemon::{Client, Daemon};
use crate::hub::ConnId;
use crate::protocol::{ErrorCode, Event, Request};

/// Stack of a connection's reader thread: it parses JSON (serde_json stops
/// at 128 levels of nesting) and runs request handlers; measured need is far
/// below this, and untouched pages cost no memory.
const READER_STACK: usize = 128 << 10;
/// Stack of a connection's writer thread: it only copies bytes.
const WRITER_STACK: usize = 64 << 10;

/// Why the socket could not be bound. Each is one sentence for the user.
#[derive(Debug)]
pub enum BindError {
    /// A daemon already answers on the path.
    InUse(String),
    /// The path is something we must not remove.
    Refused(String),
    Io(String),
}

impl std::fmt::Display for BindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BindError::InUse(m) | BindError::Refused(m) | BindError::Io(m) => f.write_str(m),
        }
    }
}

/// Binds the socket at `path`, after probing what is there.
pub fn bind(path: &Path) -> Result<UnixListener, BindError> {
    let shown = path.display();
    // lstat: the path is judged by itself, never through a symlink.
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(BindError::Io(format!("cannot inspect {shown}: {e}"))),
        Ok(meta) if meta.file_type().is_symlink() => {
            return Err(BindError::Refused(format!(
                "{shown} is a symbolic link; refusing to use or remove it (set socket_path elsewhere or remove it yourself)"
            )))
        }
        Ok(meta) if !meta.file_type().is_socket() => {
            return Err(BindError::Refused(format!(
                "{shown} exists and is not a socket; refusing to remove it (set socket_path elsewhere or move the file)"
            )))
        }
        Ok(meta) => {
            if UnixStream::connect(path).is_ok() {
                return Err(BindError::InUse(format!(
                    "another ruster daemon is already running on {shown} (stop it first, e.g. systemctl --user stop ruster)"
                )));
            }
            // SAFETY: getuid has no preconditions and cannot fail.
            let uid = unsafe { libc::getuid() };
            if meta.uid() != uid {
                return Err(BindError::Refused(format!(
                    "{shown} is a stale socket owned by uid {}; refusing to remove another user's file",
                    meta.uid()
                )));
            }
            log::info!("removing stale socket {shown}");
            std::fs::remove_file(path).map_err(|e| BindError::Io(format!("cannot remove stale socket {shown}: {e}")))?;
        }
    }
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    // The umask makes bind create the socket as 0600 at once; the chmod
    // after it only restates that. Start-up runs this before any thread
    // that creates files.
    // SAFETY: umask only swaps the process's file mode mask.
    let old = unsafe { libc::umask(0o177) };
    let bound = UnixListener::bind(path);
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    let listener = bound.map_err(|e| BindError::Io(format!("cannot bind {shown}: {e}")))?;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    Ok(listener)
}

/// The uid of the process at the other end of `stream`.
fn peer_uid(stream: &UnixStream) -> io::Result<u32> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `cred`, which is
    // a properly sized and aligned ucred.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc == 0 {
        Ok(cred.uid)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Accepts clients until the process exits.
pub fn serve(daemon: Arc<Daemon>, listener: UnixListener) {
    static NEXT_ID: AtomicU64 = AtomicU64::new(1);
    // SAFETY: getuid has no preconditions and cannot fail.
    let own_uid = unsafe { libc::getuid() };
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                log::warn!("accept failed: {e}");
                // Out of descriptors, say: back off instead of spinning.
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        if daemon.is_shutting_down() {
            reject(
                stream,
                ErrorCode::ShuttingDown,
                "the daemon is shutting down",
            );
            continue;
        }
        match peer_uid(&stream) {
            Ok(uid) if uid == own_uid || daemon.config().allowed_uids.contains(&uid) => {}
            Ok(uid) => {
                log::warn!("refused a client of uid {uid} (not in allowed_uids)");
                reject(stream, ErrorCode::PermissionDenied, &format!(
                    "uid {uid} may not use this daemon; its owner can add it to allowed_uids in the config"
                ));
                continue;
            }
            Err(e) => {
                log::warn!("cannot read a client's credentials: {e}");
                continue;
            }
        }
        if daemon.conns.load(Ordering::SeqCst) >= daemon.config().max_connections {
            log::warn!(
                "refused a client: max_connections ({}) reached",
                daemon.config().max_connections
            );
            reject(
                stream,
                ErrorCode::TooManyConnections,
                &format!(
                    "the daemon already has {} clients (max_connections); try again later",
                    daemon.config().max_connections
                ),
            );
            continue;
        }
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        daemon.conns.fetch_add(1, Ordering::SeqCst);
        let d = daemon.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("conn-{id}"))
            .stack_size(READER_STACK)
            .spawn(move || {
                let _live = Live(&d);
                connection(&d, id, stream);
            });
        if let Err(e) = spawned {
            log::error!("cannot start a connection thread: {e}");
            daemon.conns.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Counts a connection as live until its thread ends, even by a panic.
struct Live<'a>(&'a Daemon);

impl Drop for Live<'_> {
    fn drop(&mut self) {
        self.0.conns.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Answers a refused client with one error line, then closes it.
fn reject(mut stream: UnixStream, code: ErrorCode, message: &str) {
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let _ = stream.write_all(Event::error(code, message, None).to_line(None).as_bytes());
    let _ = stream.shutdown(Shutdown::Both);
}

/// Serves one client: reads request lines and dispatches them.
fn connection(daemon: &Arc<Daemon>, id: ConnId, stream: UnixStream) {
    // One descriptor per client: the reader, the writer and the hub share it.
    let stream = Arc::new(stream);
    let (out, rx) = daemon.hub.register(id, stream.clone());
    let writer = std::thread::Builder::new()
        .name(format!("write-{id}"))
        .stack_size(WRITER_STACK)
        .spawn(move || out.drain(&rx));
    let writer = match writer {
        Ok(w) => w,
        Err(e) => {
            log::error!("connection {id}: cannot start its writer: {e}");
            daemon.hub.unregister(id);
            return;
        }
    };
    log::debug!("connection {id}: open");
    let (turns, turns_done) = crossbeam_channel::bounded::<()>(0);
    let client = Client { id, turns };
    let max = daemon.config().max_line_bytes;
    let mut lines = LineReader::new(BufReader::with_capacity(8 << 10, &*stream), max);
    loop {
        match lines.next_line() {
            Ok(Some(Ok(line))) => {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                log::trace!("< conn {id}: {}", String::from_utf8_lossy(line));
                match Request::parse(line) {
                    Ok((rid, req)) => daemon.handle(&client, rid, req),
                    Err(bad) => daemon.hub.send(
                        id,
                        &Event::error(bad.code, bad.message, bad.session_id.as_deref()),
                        bad.id.as_ref(),
                    ),
                }
            }
            Ok(Some(Err(TooLong))) => daemon.hub.send(
                id,
                &Event::error(
                    ErrorCode::LineTooLong,
                    format!("the request line is longer than max_line_bytes ({max} bytes); it was discarded"),
                    None,
                ),
                None,
            ),
            Ok(None) => break,
            Err(e) => {
                log::debug!("connection {id}: read failed: {e}");
                break;
            }
        }
    }
    // The client may have only half-closed (`echo ... | nc -U`): its turns
    // still stream to it. Wait for them: the channel disconnects when the
    // last turn started here has sent its terminal event.
    drop(client);
    let _ = turns_done.recv();
    log::debug!("connection {id}: closed");
    daemon.hub.unregister(id);
    let _ = writer.join();
}

/// A line that exceeded the limit (its bytes were discarded).
struct TooLong;

/// Reads `\n`-ended lines of at most `max` bytes; the rest of a longer
/// line is skipped as it arrives, so memory stays bounded.
struct LineReader<R> {
    inner: R,
    max: usize,
    buf: Vec<u8>,
}

impl<R: BufRead> LineReader<R> {
    fn new(inner: R, max: usize) -> Self {
        LineReader {
            inner,
            max,
            buf: Vec::new(),
        }
    }

    /// `Ok(None)` at EOF. A last line without `\n` still counts.
    fn next_line(&mut self) -> io::Result<Option<Result<&[u8], TooLong>>> {
        self.buf.clear();
        let mut too_long = false;
        loop {
            let chunk = self.inner.fill_buf()?;
            if chunk.is_empty() {
                if too_long {
                    return Ok(Some(Err(TooLong)));
                }
                return Ok(if self.buf.is_empty() {
                    None
                } else {
                    Some(Ok(&self.buf))
                });
            }
            let (take, end) = match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => (i, true),
                None => (chunk.len(), false),
            };
            if !too_long {
                if self.buf.len() + take > self.max {
                    too_long = true;
                    self.buf = Vec::new(); // give the memory back
                } else {
                    self.buf.extend_from_slice(&chunk[..take]);
                }
            }
            self.inner.consume(take + usize::from(end));
            if end {
                return Ok(Some(if too_long {
                    Err(TooLong)
                } else {
                    Ok(&self.buf)
                }));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize) -> Vec<Result<String, ()>> {
        let mut r = LineReader::new(BufReader::with_capacity(3, input), max);
        let mut out = Vec::new();
        while let Some(l) = r.next_line().unwrap() {
            out.push(
                l.map(|b| String::from_utf8_lossy(b).into_owned())
                    .map_err(|_| ()),
            );
        }
        out
    }

    #[test]
    fn splits_and_bounds_lines() {
        assert_eq!(
            lines(b"ab\n0123456789\ncd\nlast", 5),
            vec![Ok("ab".into()), Err(()), Ok("cd".into()), Ok("last".into())]
        );
        assert_eq!(lines(b"", 5), vec![]);
        assert_eq!(
            lines(b"12345\n123456\n", 5),
            vec![Ok("12345".into()), Err(())]
        );
    }
}
