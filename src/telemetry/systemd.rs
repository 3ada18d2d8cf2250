//! systemd integration: READY, STOPPING, STATUS and watchdog pings over `$NOTIFY_SOCKET`.
//!
//! Every function does nothing when the service manager did not ask for notifications (no
//! `NOTIFY_SOCKET`), so the daemon runs the same by hand, in a container or under systemd. A
//! failed send is logged at debug level and otherwise ignored: notification is best effort, and
//! systemd's own timeouts (start, watchdog) catch a daemon that cannot reach it.

use std::time::Duration;

use sd_notify::NotifyState;
use tracing::debug;

fn notify(state: NotifyState<'_>) {
    if let Err(e) = sd_notify::notify(&[state]) {
        debug!(error = %e, "cannot notify systemd");
    }
}

/// Tells systemd the service is ready (schema, watcher and first scan done).
pub fn ready() {
    notify(NotifyState::Ready);
}

/// Tells systemd the service is stopping.
pub fn stopping() {
    notify(NotifyState::Stopping);
}

/// A one-line status shown by `systemctl status`.
pub fn status(message: &str) {
    // One line: a newline would start a new `KEY=value` assignment.
    let line = message.replace('\n', " ");
    notify(NotifyState::Status(&line));
}

/// How often to ping the watchdog (half of `WATCHDOG_USEC`, as sd_watchdog_enabled(3)
/// advises), or None if it is off (unset, zero, or meant for another process).
pub(crate) fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled()
        .filter(|usec| !usec.is_zero())
        .map(|timeout| timeout / 2)
}

/// Pings the watchdog.
pub(crate) fn watchdog_ping() {
    notify(NotifyState::Watchdog);
}
