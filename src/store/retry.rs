//! Retries: which driver errors are worth retrying (one exhaustive `match`; at connect, an outage
//! apart from wrong credentials or TLS), exponential backoff with jitter, and the loop that
//! retries an idempotent request until it is taken, refused for good, or cancelled.

use std::time::Duration;

use rand::Rng;
use scylla::errors::{
    ConnectionError, ConnectionPoolError, ConnectionSetupRequestErrorKind, DbError, ExecutionError,
    MetadataError, NewSessionError, RequestAttemptError,
};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::telemetry::health::Health;
use crate::telemetry::metrics;

/// Why the database could not take a request now (the `cause` label of the retries metric).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RetryCause {
    ClientTimeout,
    Connection,
    NoNode,
    SchemaAgreement,
    Unavailable,
    Overloaded,
    Bootstrapping,
    ServerTimeout,
    ServerFailure,
    RateLimited,
    ServerError,
}

impl RetryCause {
    /// Every cause, so that each metric series can exist at zero from the start.
    pub(crate) const ALL: [RetryCause; 11] = [
        Self::ClientTimeout,
        Self::Connection,
        Self::NoNode,
        Self::SchemaAgreement,
        Self::Unavailable,
        Self::Overloaded,
        Self::Bootstrapping,
        Self::ServerTimeout,
        Self::ServerFailure,
        Self::RateLimited,
        Self::ServerError,
    ];

    /// Every cause's label value, in the order of [`Self::ALL`].
    pub(crate) const LABELS: [&'static str; 11] = {
        let mut labels = [""; 11];
        let mut i = 0;
        while i < labels.len() {
            labels[i] = Self::ALL[i].as_str();
            i += 1;
        }
        labels
    };

    /// The metric label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ClientTimeout => "client_timeout",
            Self::Connection => "connection",
            Self::NoNode => "no_node",
            Self::SchemaAgreement => "schema_agreement",
            Self::Unavailable => "unavailable",
            Self::Overloaded => "overloaded",
            Self::Bootstrapping => "bootstrapping",
            Self::ServerTimeout => "server_timeout",
            Self::ServerFailure => "server_failure",
            Self::RateLimited => "rate_limited",
            Self::ServerError => "server_error",
        }
    }

    /// Whether the cause means the cluster cannot be reached (readiness turns false), rather
    /// than a busy cluster answering. (`Unavailable` is an answer: the node is reached, the
    /// replicas are not; readiness reports it apart.)
    pub(crate) fn means_unreachable(self) -> bool {
        matches!(self, Self::ClientTimeout | Self::Connection | Self::NoNode)
    }

    /// Whether the cause says the cluster is too busy for what is sent (the adaptive limit on
    /// batches in flight backs off), rather than down, starting, or failing.
    pub(crate) fn means_congestion(self) -> bool {
        match self {
            Self::ClientTimeout | Self::ServerTimeout | Self::Overloaded | Self::RateLimited => {
                true
            }
            Self::Connection
            | Self::NoNode
            | Self::SchemaAgreement
            | Self::Unavailable
            | Self::Bootstrapping
            | Self::ServerFailure
            | Self::ServerError => false,
        }
    }
}

/// Hears how each attempt of a request went (the write path's adaptive limit listens).
pub(crate) trait Attempts {
    /// An attempt is about to be sent.
    fn sending(&mut self);
    /// The attempt came back: taken, or not taken now for this cause. (A refusal for good is
    /// not reported: it says nothing about how busy the cluster is.)
    fn came_back(&mut self, taken: Result<(), RetryCause>);
}

/// Nobody listens.
impl Attempts for () {
    fn sending(&mut self) {}
    fn came_back(&mut self, _: Result<(), RetryCause>) {}
}

/// What to do about a failed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Disposition {
    /// The database could not take it now; try again later.
    Retry(RetryCause),
    /// Retrying cannot help (schema, batch too large, auth, a bug): fail the file.
    Permanent,
}

/// An error that knows whether retrying can help.
pub(crate) trait Classify: std::fmt::Display {
    fn disposition(&self) -> Disposition;
}

impl Classify for ExecutionError {
    fn disposition(&self) -> Disposition {
        classify(self)
    }
}

/// Decides retry or give up, for every error the driver can return. Only idempotent statements
/// go through here (every write of ours is an upsert or a delete at a fixed timestamp).
pub(crate) fn classify(err: &ExecutionError) -> Disposition {
    use Disposition::{Permanent, Retry};
    match err {
        ExecutionError::RequestTimeout(_) => Retry(RetryCause::ClientTimeout),
        ExecutionError::ConnectionPoolError(pool) => match pool {
            ConnectionPoolError::Broken { .. } | ConnectionPoolError::Initializing => {
                Retry(RetryCause::Connection)
            }
            ConnectionPoolError::NodeDisabledByHostFilter => Permanent,
            _ => Permanent,
        },
        ExecutionError::EmptyPlan => Retry(RetryCause::NoNode),
        ExecutionError::SchemaAgreementError(_) | ExecutionError::MetadataError(_) => {
            Retry(RetryCause::SchemaAgreement)
        }
        ExecutionError::LastAttemptError(attempt) => match attempt {
            RequestAttemptError::BrokenConnectionError(_)
            | RequestAttemptError::UnableToAllocStreamId => Retry(RetryCause::Connection),
            RequestAttemptError::DbError(db, _) => match db {
                DbError::Unavailable { .. } => Retry(RetryCause::Unavailable),
                DbError::Overloaded => Retry(RetryCause::Overloaded),
                DbError::IsBootstrapping => Retry(RetryCause::Bootstrapping),
                DbError::ReadTimeout { .. } | DbError::WriteTimeout { .. } => {
                    Retry(RetryCause::ServerTimeout)
                }
                DbError::ReadFailure { .. } | DbError::WriteFailure { .. } => {
                    Retry(RetryCause::ServerFailure)
                }
                DbError::RateLimitReached { .. } => Retry(RetryCause::RateLimited),
                DbError::ServerError | DbError::TruncateError => Retry(RetryCause::ServerError),
                DbError::SyntaxError
                | DbError::Invalid
                | DbError::AlreadyExists { .. }
                | DbError::FunctionFailure { .. }
                | DbError::AuthenticationError
                | DbError::Unauthorized
                | DbError::ConfigError
                | DbError::Unprepared { .. }
                | DbError::ProtocolError
                | DbError::Other(_) => Permanent,
                _ => Permanent,
            },
            _ => Permanent,
        },
        ExecutionError::BadQuery(_)
        | ExecutionError::PrepareError(_)
        | ExecutionError::UseKeyspaceError(_) => Permanent,
        _ => Permanent,
    }
}

/// Why no session could be opened: an outage (worth waiting for) or a configuration the cluster
/// refuses (retrying cannot help; the user must change something).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ConnectFailure {
    /// Down, refused, timed out, connection lost: retried by the daemon.
    Unreachable,
    /// The cluster refused the credentials, or wants some; what the server (or driver) said.
    Authentication(String),
    /// The TLS handshake failed: a certificate not verified, a protocol mismatch.
    Tls(TlsFailure),
    /// The role may not do what a connection needs.
    Unauthorized(String),
}

/// A failed TLS handshake, with what the certificate check said when it was that.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsFailure {
    /// rustls' own words.
    pub detail: String,
    /// The certificate does not name the address (or `server_name`) it was checked against.
    pub name_mismatch: bool,
    /// The certificate is not signed by a CA of `ca_file`.
    pub unknown_issuer: bool,
}

/// Classifies a failed session: the connection errors a node answered with say whether it was an
/// outage. Errors of unknown shape count as outages (the daemon keeps trying, as before).
pub(crate) fn classify_connect(err: &NewSessionError) -> ConnectFailure {
    match err {
        NewSessionError::MetadataError(MetadataError::ConnectionPoolError(
            ConnectionPoolError::Broken {
                last_connection_error,
            },
        )) => classify_connection(last_connection_error),
        NewSessionError::MetadataError(_)
        | NewSessionError::FailedToResolveAnyHostname(_)
        | NewSessionError::EmptyKnownNodesList
        | NewSessionError::UseKeyspaceError(_)
        | NewSessionError::IllegalConfig(_) => ConnectFailure::Unreachable,
        // Variants a newer driver adds: an outage, so the daemon keeps trying.
        _ => ConnectFailure::Unreachable,
    }
}

/// One connection's error: an authentication refusal, a TLS failure, or an outage.
pub(crate) fn classify_connection(err: &ConnectionError) -> ConnectFailure {
    use ConnectionSetupRequestErrorKind as Setup;
    match err {
        ConnectionError::ConnectionSetupRequestError(setup) => match setup.get_error() {
            Setup::DbError(DbError::AuthenticationError, said) => {
                ConnectFailure::Authentication(said.clone())
            }
            Setup::DbError(DbError::Unauthorized, said) => {
                ConnectFailure::Unauthorized(said.clone())
            }
            Setup::MissingAuthentication => ConnectFailure::Authentication(
                "the cluster requires a user name and password".into(),
            ),
            Setup::StartAuthSessionError(said)
            | Setup::AuthChallengeEvaluationError(said)
            | Setup::AuthFinishError(said) => ConnectFailure::Authentication(said.clone()),
            // A node that answers oddly or drops the connection during set-up: as before, an
            // outage (a node requiring TLS resets a plain connection here).
            Setup::DbError(..)
            | Setup::BrokenConnection(_)
            | Setup::UnableToAllocStreamId
            | Setup::UnexpectedResponse(_)
            | Setup::CqlRequestSerialization(_)
            | Setup::BodyExtensionsParseError(_)
            | Setup::CqlSupportedParseError(_)
            | Setup::CqlAuthenticateParseError(_)
            | Setup::CqlAuthSuccessParseError(_)
            | Setup::CqlAuthChallengeParseError(_)
            | Setup::CqlErrorParseError(_) => ConnectFailure::Unreachable,
            // Variants a newer driver adds: an outage, so the daemon keeps trying.
            _ => ConnectFailure::Unreachable,
        },
        ConnectionError::IoError(io) => match tls_failure(io) {
            Some(tls) => ConnectFailure::Tls(tls),
            None => ConnectFailure::Unreachable,
        },
        ConnectionError::ConnectTimeout
        | ConnectionError::BrokenConnection(_)
        | ConnectionError::NoSourcePortForShard(_)
        | ConnectionError::TranslationError(_)
        | ConnectionError::UseKeyspaceError(_) => ConnectFailure::Unreachable,
        // Variants a newer driver adds: an outage, so the daemon keeps trying.
        _ => ConnectFailure::Unreachable,
    }
}

/// The rustls error inside an I/O error of the handshake, if that is what it is.
fn tls_failure(io: &std::io::Error) -> Option<TlsFailure> {
    use rustls::{CertificateError, Error};
    let tls = io.get_ref()?.downcast_ref::<Error>()?;
    let cert = match tls {
        Error::InvalidCertificate(c) => Some(c),
        _ => None,
    };
    Some(TlsFailure {
        detail: tls.to_string(),
        name_mismatch: matches!(
            cert,
            Some(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
            )
        ),
        unknown_issuer: matches!(cert, Some(CertificateError::UnknownIssuer)),
    })
}

/// Exponential backoff with full jitter between `initial` and `max`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The delay before retry number `attempt` (0-based): random in [d/2, d], d = initial·2^attempt, capped.
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX);
        let d = self.initial.saturating_mul(factor).min(self.max);
        let half = d / 2;
        half + rand::rng().random_range(Duration::ZERO..=half)
    }
}

/// A request that did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The database refused it for good (schema, auth, batch too large, a bug).
    #[error("the database refused the request")]
    Refused(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Shutdown interrupted it (it may or may not have been applied; requests are idempotent).
    #[error("interrupted by shutdown")]
    Cancelled,
}

/// Retries requests with backoff, and tells readiness whether the database answers.
#[derive(Debug, Clone)]
pub(crate) struct Retrier {
    backoff: Backoff,
    health: std::sync::Arc<Health>,
}

impl Retrier {
    pub fn new(backoff: Backoff, health: std::sync::Arc<Health>) -> Self {
        Self { backoff, health }
    }

    /// Runs `attempt` until it succeeds, fails permanently, or `cancel` fires; retryable
    /// failures wait with backoff and mark the database down until a request succeeds.
    pub async fn retrying<T, E, F, Fut>(
        &self,
        cancel: &CancellationToken,
        attempt: F,
    ) -> Result<T, RequestError>
    where
        E: Classify + std::error::Error + Send + Sync + 'static,
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        self.retrying_heard(cancel, &mut (), attempt).await
    }

    /// [`Self::retrying`], telling `heard` about every attempt.
    pub async fn retrying_heard<T, E, F, Fut>(
        &self,
        cancel: &CancellationToken,
        heard: &mut impl Attempts,
        mut attempt: F,
    ) -> Result<T, RequestError>
    where
        E: Classify + std::error::Error + Send + Sync + 'static,
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        let mut failures: u32 = 0;
        loop {
            if cancel.is_cancelled() {
                return Err(RequestError::Cancelled);
            }
            heard.sending();
            let err = match attempt().await {
                Ok(v) => {
                    heard.came_back(Ok(()));
                    self.health.set_database_up(true);
                    self.health.set_replicas_unavailable(None);
                    return Ok(v);
                }
                Err(e) => e,
            };
            match err.disposition() {
                Disposition::Permanent => {
                    self.health.set_database_up(true);
                    return Err(RequestError::Refused(Box::new(err)));
                }
                Disposition::Retry(cause) => {
                    heard.came_back(Err(cause));
                    metrics::write_retry(cause.as_str());
                    if cause.means_unreachable() {
                        self.health.set_database_up(false);
                    }
                    if cause == RetryCause::Unavailable {
                        self.health.set_replicas_unavailable(Some(err.to_string()));
                    }
                    let delay = self.backoff.delay(failures);
                    if failures == 0 || failures.is_power_of_two() {
                        warn!(cause = cause.as_str(), attempt = failures + 1, retry_in = ?delay, error = %err, "write not taken by the database; retrying");
                    }
                    failures = failures.saturating_add(1);
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = cancel.cancelled() => return Err(RequestError::Cancelled),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(2),
        };
        // 100 ms doubling per attempt, capped at 2 s: written out, not recomputed.
        let caps_ms = [100, 200, 400, 800, 1600, 2000, 2000, 2000];
        for attempt in 0..40 {
            let d = b.delay(attempt);
            let cap = Duration::from_millis(caps_ms[(attempt as usize).min(caps_ms.len() - 1)]);
            assert!(
                d >= cap / 2 && d <= cap,
                "attempt {attempt}: {d:?} vs {cap:?}"
            );
        }
    }

    #[test]
    fn retry_cause_labels_are_distinct() {
        let mut labels: Vec<&str> = RetryCause::ALL.iter().map(|c| c.as_str()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), RetryCause::ALL.len());
    }

    /// A rustls error inside the handshake's I/O error is a TLS failure (with the certificate
    /// check's verdict); a refused or timed-out connection is an outage.
    #[test]
    fn connect_failures_separate_tls_from_outages() {
        use rustls::CertificateError;
        use std::sync::Arc;
        let io_err = |e: std::io::Error| ConnectionError::IoError(Arc::new(e));
        let tls = |c: CertificateError| {
            io_err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                rustls::Error::InvalidCertificate(c),
            ))
        };
        match classify_connection(&tls(CertificateError::UnknownIssuer)) {
            ConnectFailure::Tls(f) => assert!(f.unknown_issuer && !f.name_mismatch, "{f:?}"),
            other => panic!("{other:?}"),
        }
        match classify_connection(&tls(CertificateError::NotValidForName)) {
            ConnectFailure::Tls(f) => assert!(f.name_mismatch && !f.unknown_issuer, "{f:?}"),
            other => panic!("{other:?}"),
        }
        for outage in [
            ConnectionError::ConnectTimeout,
            io_err(std::io::ErrorKind::ConnectionRefused.into()),
            io_err(std::io::Error::other("not a TLS error")),
        ] {
            assert_eq!(classify_connection(&outage), ConnectFailure::Unreachable);
        }
    }

    #[test]
    fn classification_separates_outages_from_bad_requests() {
        let db = |e: DbError| {
            ExecutionError::LastAttemptError(RequestAttemptError::DbError(e, "x".into()))
        };
        assert_eq!(
            classify(&db(DbError::Overloaded)),
            Disposition::Retry(RetryCause::Overloaded)
        );
        assert_eq!(
            classify(&ExecutionError::RequestTimeout(Duration::from_secs(1))),
            Disposition::Retry(RetryCause::ClientTimeout)
        );
        assert_eq!(
            classify(&ExecutionError::LastAttemptError(
                RequestAttemptError::UnableToAllocStreamId
            )),
            Disposition::Retry(RetryCause::Connection)
        );
        assert_eq!(classify(&db(DbError::Invalid)), Disposition::Permanent);
        assert_eq!(classify(&db(DbError::Unauthorized)), Disposition::Permanent);
        assert_eq!(classify(&db(DbError::SyntaxError)), Disposition::Permanent);
    }
}
