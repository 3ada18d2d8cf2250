//! Slots: the async gate around the adaptive [`Limiter`]. A batch waits here for a slot in
//! flight; its slot hears how each attempt went (through the retrier) and tells the limiter;
//! dropping the slot gives it back.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use tokio::sync::Notify;
use tracing::debug;

use crate::pipeline::limit::{Bounds, Change, Limiter, Outcome, Ticket};
use crate::store::retry::{Attempts, RetryCause};
use crate::telemetry::metrics;

/// The slots in flight over every file being loaded.
#[derive(Debug)]
pub(crate) struct Slots {
    /// Never held across an await.
    limiter: Mutex<Limiter>,
    /// Woken when a slot is given back or the limit grows.
    room: Notify,
}

impl Slots {
    /// Slots under a limit that starts at `initial` within `bounds`.
    pub fn new(bounds: Bounds, initial: usize) -> Arc<Self> {
        let limiter = Limiter::new(bounds, initial);
        metrics::write_concurrency_limit(limiter.limit());
        Arc::new(Self {
            limiter: Mutex::new(limiter),
            room: Notify::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Limiter> {
        self.limiter.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The limit now.
    #[cfg(test)]
    fn limit(&self) -> usize {
        self.lock().limit()
    }

    /// Waits for a slot. Cancel-safe: a wait dropped before it returned holds nothing.
    pub async fn acquire(self: &Arc<Self>) -> Slot {
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            // Registered before the check, so a slot given back in between wakes this wait.
            room.as_mut().enable();
            if self.try_take() {
                return Slot {
                    slots: Arc::clone(self),
                    sent: None,
                };
            }
            room.await;
        }
    }

    fn try_take(&self) -> bool {
        let mut limiter = self.lock();
        let taken = limiter.try_acquire();
        if taken {
            metrics::batches_in_flight(limiter.in_flight());
        }
        taken
    }

    fn give_back(&self) {
        let in_flight = {
            let mut limiter = self.lock();
            limiter.release();
            limiter.in_flight()
        };
        metrics::batches_in_flight(in_flight);
        self.room.notify_one();
    }

    fn record(&self, ticket: Ticket, outcome: Outcome) {
        let change = self.lock().record(ticket, outcome);
        match change {
            Some(Change::Increased(limit)) => {
                metrics::write_concurrency_limit(limit);
                self.room.notify_one();
            }
            Some(Change::Decreased(limit, why)) => {
                metrics::write_concurrency_limit(limit);
                debug!(limit, why = ?why, "fewer batches in flight");
            }
            None => {}
        }
    }

    /// New bounds (a reload); waiters re-check at once.
    pub fn set_bounds(&self, bounds: Bounds) {
        let limit = {
            let mut limiter = self.lock();
            limiter.set_bounds(bounds);
            limiter.limit()
        };
        metrics::write_concurrency_limit(limit);
        self.room.notify_waiters();
    }
}

/// One slot in flight, given back when dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    slots: Arc<Slots>,
    /// The attempt being sent: its ticket and when it went out.
    sent: Option<(Ticket, Instant)>,
}

impl Attempts for Slot {
    fn sending(&mut self) {
        self.sent = Some((self.slots.lock().ticket(), Instant::now()));
    }

    fn came_back(&mut self, taken: Result<(), RetryCause>) {
        let Some((ticket, sent_at)) = self.sent.take() else {
            return;
        };
        let outcome = match taken {
            Ok(()) => {
                let latency = sent_at.elapsed();
                metrics::write_latency(latency);
                Outcome::Taken(latency)
            }
            Err(cause) if cause.means_congestion() => Outcome::Congested,
            Err(_) => return,
        };
        self.slots.record(ticket, outcome);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.give_back();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;

    fn slots(min: usize, initial: usize, max: usize) -> Arc<Slots> {
        Slots::new(Bounds { min, max }, initial)
    }

    /// Awaits `task`, failing (not hanging) if it never ends: on the paused clock the timeout
    /// fires as soon as nothing else can run.
    async fn ends<T>(task: tokio::task::JoinHandle<T>, what: &str) -> T {
        tokio::time::timeout(std::time::Duration::from_secs(60), task)
            .await
            .unwrap_or_else(|_| panic!("{what}: still waiting"))
            .expect("the task did not panic")
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_for_a_slot_ends_when_one_is_given_back() {
        let slots = slots(1, 2, 2);
        let a = slots.acquire().await;
        let _b = slots.acquire().await;
        let waiting = tokio::spawn({
            let slots = Arc::clone(&slots);
            async move { slots.acquire().await }
        });
        assert!(slots.acquire().now_or_never().is_none(), "both slots taken");
        drop(a);
        let c = ends(waiting, "the waiter of the slot given back").await;
        assert!(slots.acquire().now_or_never().is_none());
        drop(c);
        assert!(slots.acquire().now_or_never().is_some());
    }

    /// A timeout heard through the slot lowers the limit: fewer slots are handed out.
    #[tokio::test]
    async fn congestion_heard_by_a_slot_leaves_fewer_slots() {
        let slots = slots(1, 4, 4);
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(slots.acquire().await);
        }
        held[0].sending();
        held[0].came_back(Err(RetryCause::ServerTimeout));
        assert_eq!(slots.limit(), 2);
        // An outage is not congestion: no change.
        held[1].sending();
        held[1].came_back(Err(RetryCause::Connection));
        assert_eq!(slots.limit(), 2);
        held.truncate(2);
        assert!(
            slots.acquire().now_or_never().is_none(),
            "2 of a limit of 2"
        );
        held.pop();
        assert!(slots.acquire().now_or_never().is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn wider_bounds_wake_the_waiters() {
        let slots = slots(1, 1, 1);
        let _held = slots.acquire().await;
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let slots = Arc::clone(&slots);
                tokio::spawn(async move { slots.acquire().await })
            })
            .collect();
        // Every waiter registered and asleep before the bounds change.
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
        slots.set_bounds(Bounds { min: 4, max: 8 });
        assert_eq!(slots.limit(), 4);
        for w in waiters {
            ends(w, "a waiter of the new slots").await;
        }
    }
}
