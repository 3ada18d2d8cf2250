//! The HTTP endpoint: `/metrics` (Prometheus text format), `/healthz` (alive), `/readyz` (ready).
//!
//! `/healthz` answers 200 whenever the process can answer at all, from before the database is
//! reached until the process exits. `/readyz` answers 200 when [`Health::ready`] holds (database
//! reachable and the inbox watcher running) and 503 with the reasons otherwise.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::health::Health;
use super::metrics;

/// How often histogram samples are folded into their buckets between scrapes, so that memory
/// stays flat when nobody scrapes.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Content type of the Prometheus text exposition format.
const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum ExporterError {
    #[error("cannot listen on {addr}: {source} (change metrics.listen)")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot install the metrics recorder: {0}")]
    Recorder(#[from] BuildError),
}

/// The recorder's configuration: every histogram of the catalogue with its explicit buckets, so
/// that they render as Prometheus histograms rather than summaries.
pub(crate) fn recorder_builder() -> Result<PrometheusBuilder, BuildError> {
    let mut builder = PrometheusBuilder::new();
    for (name, buckets) in metrics::HISTOGRAMS {
        builder = builder.set_buckets_for_metric(Matcher::Full((*name).to_owned()), buckets)?;
    }
    Ok(builder)
}

/// The process's recorder, installed by the first call (the recorder is global: a second
/// daemon in the same process, as in the in-process tests, shares it).
fn installed_recorder() -> Result<PrometheusHandle, ExporterError> {
    static HANDLE: std::sync::Mutex<Option<PrometheusHandle>> = std::sync::Mutex::new(None);
    let mut handle = HANDLE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(h) = handle.as_ref() {
        return Ok(h.clone());
    }
    let installed = recorder_builder()?.install_recorder()?;
    Ok(handle.insert(installed).clone())
}

/// What the handlers share.
#[derive(Clone)]
struct Endpoint {
    /// Renders the metrics of the installed recorder.
    metrics: PrometheusHandle,
    /// Readiness flags set by the daemon's stages.
    health: Arc<Health>,
}

/// Installs the metrics recorder, binds `listen` and serves until `cancel`; returns the bound
/// address (port 0 picks a free port). The recorder is global: it is installed once per process.
pub async fn start(
    listen: SocketAddr,
    health: Arc<Health>,
    labels: metrics::KnownLabels,
    cancel: CancellationToken,
) -> Result<SocketAddr, ExporterError> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| ExporterError::Bind {
            addr: listen,
            source,
        })?;
    let bound = listener
        .local_addr()
        .map_err(|source| ExporterError::Bind {
            addr: listen,
            source,
        })?;
    let handle = installed_recorder()?;
    metrics::describe(&labels);
    metrics::ready(health.ready());

    tokio::spawn(upkeep(handle.clone(), cancel.clone()));
    let app = router(Endpoint {
        metrics: handle,
        health,
    });
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(cancel.cancelled_owned())
            .await;
        if let Err(e) = served {
            warn!(error = %e, "the metrics endpoint stopped");
        }
    });
    Ok(bound)
}

fn router(endpoint: Endpoint) -> Router {
    Router::new()
        .route("/metrics", get(render_metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(endpoint)
}

async fn render_metrics(State(endpoint): State<Endpoint>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)],
        endpoint.metrics.render(),
    )
}

async fn healthz() -> &'static str {
    "alive\n"
}

async fn readyz(State(endpoint): State<Endpoint>) -> (StatusCode, String) {
    let reasons = endpoint.health.not_ready_reasons();
    if reasons.is_empty() {
        (StatusCode::OK, "ready\n".to_owned())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}\n", reasons.join("; ")),
        )
    }
}

async fn upkeep(handle: PrometheusHandle, cancel: CancellationToken) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(UPKEEP_INTERVAL) => handle.run_upkeep(),
            _ = cancel.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Histograms render with buckets (not as summaries), and every metric has its help text.
    #[test]
    fn histograms_render_with_buckets_and_every_metric_has_help() {
        let recorder = recorder_builder().unwrap().build_recorder();
        let handle = recorder.handle();
        ::metrics::with_local_recorder(&recorder, || {
            metrics::describe(&metrics::KnownLabels {
                reject_reasons: &["bad_number"],
                retry_causes: &["overloaded"],
            });
            metrics::build_info();
            metrics::free_space(5 << 30, 1 << 30);
            metrics::retention_swept("done", 1, 10, 100);
            metrics::write_latency(Duration::from_millis(3));
            metrics::backlog(2, 2048);
            metrics::write_concurrency_limit(32);
            metrics::pace_limits(0, 0);
            metrics::rows_rejected("bad_number", 1);
            metrics::file_finished(metrics::FileOutcomeLabel::Loaded, Duration::from_secs(2));
        });
        let text = handle.render();
        for def in metrics::CATALOGUE {
            assert!(
                text.contains(&format!("# TYPE {} {}", def.name, def.kind.as_str())),
                "{} missing or of the wrong type in:\n{text}",
                def.name
            );
            assert!(
                text.contains(&format!("# HELP {} {}", def.name, def.help)),
                "{}: no help text",
                def.name
            );
        }
        assert!(
            text.contains("bar_ingest_write_latency_seconds_bucket{le=\"0.005\"} 1"),
            "{text}"
        );
        assert!(text.contains("bar_ingest_file_duration_seconds_bucket{le=\"+Inf\"} 1"));
        assert!(!text.contains("quantile="), "no summaries: {text}");
        assert!(text.contains("bar_ingest_files_total{outcome=\"quarantined\"} 0"));
        assert!(text.contains("bar_ingest_write_retries_total{cause=\"overloaded\"} 0"));
    }

    #[tokio::test]
    async fn readyz_says_why_it_is_not_ready() {
        let health = Arc::new(Health::default());
        let recorder = recorder_builder().unwrap().build_recorder();
        let endpoint = Endpoint {
            metrics: recorder.handle(),
            health: health.clone(),
        };
        let (code, body) = readyz(State(endpoint.clone())).await;
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("database unreachable"), "{body}");
        assert!(body.contains("watcher"), "{body}");
        health.set_database_up(true);
        health.set_watcher_ready(true);
        let (code, body) = readyz(State(endpoint.clone())).await;
        assert_eq!((code, body.as_str()), (StatusCode::OK, "ready\n"));
        // The node answers but the replicas are missing: not ready, with what the cluster said,
        // until a write is taken again.
        health.set_replicas_unavailable(Some("alive: 1, required: 2".into()));
        let (code, body) = readyz(State(endpoint.clone())).await;
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("replicas_unavailable"), "{body}");
        assert!(body.contains("alive: 1, required: 2"), "{body}");
        health.set_database_up(true);
        assert!(!health.ready(), "the probe's answer does not clear it");
        health.set_replicas_unavailable(None);
        let (code, body) = readyz(State(endpoint)).await;
        assert_eq!((code, body.as_str()), (StatusCode::OK, "ready\n"));
    }
}
