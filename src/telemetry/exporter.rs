//! The HTTP endpoint: `/metrics` (Prometheus), `/healthz` (alive), `/readyz` (ready). (stub: being written)

use std::net::SocketAddr;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::health::Health;

/// The endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum ExporterError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Installs the metrics recorder, binds `listen` and serves until `cancel`; returns the bound
/// address (port 0 picks a free port).
pub async fn start(
    listen: SocketAddr,
    _health: Arc<Health>,
    _cancel: CancellationToken,
) -> Result<SocketAddr, ExporterError> {
    Ok(listen)
}
