//! The one way the daemon touches the file system: every blocking call (rename, fsync, listing,
//! sidecar) runs on tokio's blocking pool, so a hung NFS mount stalls that call, never the
//! runtime's workers (the watcher, the claim loop, the health endpoints).

use std::io;

/// Runs `f` off the async runtime. A panic in `f` comes back as an error, not a crash.
pub(crate) async fn fs<T, F>(f: F) -> io::Result<T>
where
    F: FnOnce() -> io::Result<T> + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => Err(io::Error::other(format!("a file-system task failed: {e}"))),
    }
}
