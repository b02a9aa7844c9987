//! The proactive thread. For now it sends the keepalive every
//! `proactive_interval_secs` (the seed's placeholder, kept so clients see a
//! live link); reminders and heartbeats will join it here.

use std::sync::Arc;
use std::time::Duration;

use crate::daemon::Daemon;
use crate::protocol::Event;

pub fn start(daemon: Arc<Daemon>) {
    let every = daemon.config.proactive_interval_secs;
    if every == 0 {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("proactive".into())
        .stack_size(64 << 10)
        .spawn(move || loop {
            std::thread::sleep(Duration::from_secs(every));
            if daemon.is_shutting_down() {
                return;
            }
            daemon.hub.broadcast(&Event::Keepalive {
                ts: crate::time::now_rfc3339(),
            });
        });
    if let Err(e) = spawned {
        log::error!("cannot start the proactive thread: {e}");
    }
}
