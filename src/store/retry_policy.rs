//! The driver's retry policy: the driver's default, except that a cluster's `Unavailable`
//! answer is handed back at once instead of being tried on the next node.
//!
//! Why: with two replicas of three down, the default policy sends the refused write on to the
//! next node of the plan, a dead one, and the driver then reports that node's broken
//! connection pool, hiding what the live coordinator said. Our own retry loop
//! (`store::retry`) waits and tries again either way; returning `Unavailable` lets it say why
//! (`/readyz`: replicas unavailable) rather than "database unreachable".

use scylla::errors::{DbError, RequestAttemptError};
use scylla::policies::retry::{
    DefaultRetrySession, RequestInfo, RetryDecision, RetryPolicy, RetrySession,
};

/// The default policy that returns `Unavailable` as it came.
#[derive(Debug, Default)]
pub(crate) struct ReportUnavailable;

impl RetryPolicy for ReportUnavailable {
    fn new_session(&self) -> Box<dyn RetrySession> {
        Box::new(Session(DefaultRetrySession::new()))
    }
}

struct Session(DefaultRetrySession);

/// Whether the attempt's error goes back to the caller as it is, whatever the default would do.
fn hand_back(error: &RequestAttemptError) -> bool {
    matches!(
        error,
        RequestAttemptError::DbError(DbError::Unavailable { .. }, _)
    )
}

impl RetrySession for Session {
    fn decide_should_retry(&mut self, request_info: RequestInfo) -> RetryDecision {
        if hand_back(request_info.error) {
            RetryDecision::DontRetry
        } else {
            self.0.decide_should_retry(request_info)
        }
    }

    fn reset(&mut self) {
        self.0.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scylla::statement::Consistency;

    #[test]
    fn only_unavailable_is_handed_back() {
        let unavailable = DbError::Unavailable {
            consistency: Consistency::LocalQuorum,
            required: 2,
            alive: 1,
        };
        assert!(hand_back(&RequestAttemptError::DbError(
            unavailable,
            "x".into()
        )));
        for other in [
            DbError::Overloaded,
            DbError::IsBootstrapping,
            DbError::ServerError,
        ] {
            assert!(!hand_back(&RequestAttemptError::DbError(other, "x".into())));
        }
        assert!(!hand_back(&RequestAttemptError::UnableToAllocStreamId));
    }
}
