//! systemd integration: READY, STOPPING, STATUS and watchdog pings over `$NOTIFY_SOCKET`. (stub: being written)

use std::time::Duration;

/// Tells systemd the service is ready (schema, watcher and first scan done).
pub fn ready() {}

/// Tells systemd the service is stopping.
pub fn stopping() {}

/// A one-line status shown by `systemctl status`.
pub fn status(_message: &str) {}

/// How often to ping the watchdog (half of `WATCHDOG_USEC`), or None if it is off.
pub fn watchdog_interval() -> Option<Duration> {
    None
}

/// Pings the watchdog.
pub fn watchdog_ping() {}
