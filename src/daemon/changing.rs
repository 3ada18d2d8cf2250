//! Backoff for files that keep changing: a file handed back because it changed while it was
//! loaded is not claimed again before a delay that doubles each time it happens again.

use std::collections::HashMap;
use std::ffi::OsString;
use std::time::{Duration, Instant};

/// Per file name: how often in a row it changed under the loader, and when it may be claimed.
#[derive(Debug)]
pub(crate) struct Changing {
    first: Duration,
    max: Duration,
    files: HashMap<OsString, Entry>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    times: u32,
    not_before: Instant,
    /// A delayed claim is already scheduled for this name.
    requeued: bool,
}

impl Changing {
    /// Delays start at `first` and double up to `max`.
    pub(crate) fn new(first: Duration, max: Duration) -> Self {
        Self {
            first,
            max,
            files: HashMap::new(),
        }
    }

    /// The file changed while it was loaded (it is back in the inbox): returns its delay.
    pub(crate) fn changed(&mut self, name: OsString, now: Instant) -> Duration {
        let times = self.files.get(&name).map_or(0, |e| e.times);
        let delay = self
            .first
            .saturating_mul(2u32.saturating_pow(times.min(20)))
            .min(self.max);
        self.files.insert(
            name,
            Entry {
                times: times + 1,
                not_before: now + delay,
                requeued: false,
            },
        );
        delay
    }

    /// The file reached any other result: its history is forgotten.
    pub(crate) fn settled(&mut self, name: &OsString) {
        self.files.remove(name);
    }

    /// Whether the file may be claimed now. If not: how long to wait, and whether the caller
    /// must schedule the delayed claim (once per delay; later reports of the name are dropped).
    pub(crate) fn wait(&mut self, name: &OsString, now: Instant) -> Option<(Duration, bool)> {
        let entry = self.files.get_mut(name)?;
        let left = entry.not_before.checked_duration_since(now)?;
        if left.is_zero() {
            return None;
        }
        let schedule = !entry.requeued;
        entry.requeued = true;
        Some((left, schedule))
    }

    /// The delayed claim fired: the next report may schedule again if still too early.
    pub(crate) fn requeue_fired(&mut self, name: &OsString) {
        if let Some(e) = self.files.get_mut(name) {
            e.requeued = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn delays_double_up_to_the_cap_and_reset_when_settled() {
        let mut c = Changing::new(S, 5 * S);
        let name = OsString::from("X.txt");
        let t = Instant::now();
        let delays: Vec<_> = (0..5).map(|_| c.changed(name.clone(), t)).collect();
        assert_eq!(delays, [S, 2 * S, 4 * S, 5 * S, 5 * S]);
        c.settled(&name);
        assert_eq!(c.changed(name, t), S);
    }

    #[test]
    fn a_file_waits_out_its_delay_and_is_scheduled_once() {
        let mut c = Changing::new(S, 60 * S);
        let name = OsString::from("X.txt");
        let other = OsString::from("Y.txt");
        let t = Instant::now();
        assert_eq!(c.wait(&name, t), None, "never changed: claim at once");
        c.changed(name.clone(), t);
        assert_eq!(c.wait(&name, t), Some((S, true)));
        assert_eq!(
            c.wait(&name, t + S / 2),
            Some((S / 2, false)),
            "already scheduled"
        );
        assert_eq!(c.wait(&other, t), None, "other names are not delayed");
        c.requeue_fired(&name);
        assert_eq!(c.wait(&name, t + S / 2), Some((S / 2, true)));
        assert_eq!(c.wait(&name, t + S), None, "delay over");
        assert_eq!(c.wait(&name, t + 2 * S), None);
    }
}
