//! Backoff for files that keep changing: a file handed back because it changed while it was
//! loaded is not claimed again before a delay that doubles each time it happens again. The
//! delay travels with the file, as an extended attribute ([`mark`], [`marked`]), so that every
//! instance on a shared inbox keeps it, not only the one that handed the file back.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The extended attribute a hand-back leaves on the file: `<not before, µs since the epoch>
/// <times it changed in a row>`.
const MARK: &str = "user.bar_ingest.changed";

/// Records on the file (not following a link) that it may not be claimed before `not_before`,
/// having changed `times` times in a row. Fails where the file system has no user extended
/// attributes (the backoff then holds in this instance only).
pub(crate) fn mark(path: &Path, not_before: SystemTime, times: u32) -> std::io::Result<()> {
    let micros = not_before
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros());
    let value = format!("{micros} {times}");
    rustix::fs::lsetxattr(
        path,
        MARK,
        value.as_bytes(),
        rustix::fs::XattrFlags::empty(),
    )
    .map_err(std::io::Error::from)
}

/// What [`mark`] recorded on the file: until when to wait, and how often it changed.
pub(crate) fn marked(path: &Path) -> Option<(SystemTime, u32)> {
    let mut buf = [0u8; 64];
    let n = rustix::fs::lgetxattr(path, MARK, &mut buf[..]).ok()?;
    let text = std::str::from_utf8(buf.get(..n)?).ok()?;
    let (micros, times) = text.split_once(' ')?;
    let not_before = UNIX_EPOCH + Duration::from_micros(micros.parse().ok()?);
    Some((not_before, times.parse().ok()?))
}

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

    /// Takes what another instance recorded on the file ([`marked`]): it changed `times` times in
    /// a row and may not be claimed before `not_before`. Keeps whichever is later.
    pub(crate) fn adopt(&mut self, name: &OsString, times: u32, not_before: SystemTime) {
        let left = not_before
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        let not_before = Instant::now() + left;
        let entry = self.files.entry(name.clone()).or_insert(Entry {
            times,
            not_before,
            requeued: false,
        });
        entry.times = entry.times.max(times);
        entry.not_before = entry.not_before.max(not_before);
    }

    /// How often the file changed in a row so far.
    pub(crate) fn times(&self, name: &OsString) -> u32 {
        self.files.get(name).map_or(0, |e| e.times)
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

    /// The backoff lived in the memory of the instance that handed the file back: another
    /// instance on the same inbox claimed the file again at once. Now the file carries it.
    #[test]
    fn another_instance_reclaimed_a_handed_back_file_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("X.txt");
        std::fs::write(&file, "x").unwrap();
        let name = OsString::from("X.txt");
        let mut a = Changing::new(10 * S, 60 * S);
        a.changed(name.clone(), Instant::now());
        let delay = a.changed(name.clone(), Instant::now());
        mark(&file, SystemTime::now() + delay, a.times(&name)).unwrap();
        // Instance b never saw the file change: on its own it would claim it at once.
        let mut b = Changing::new(10 * S, 60 * S);
        assert_eq!(b.wait(&name, Instant::now()), None);
        let (not_before, times) = marked(&file).expect("the file carries its backoff");
        b.adopt(&name, times, not_before);
        let (left, schedule) = b.wait(&name, Instant::now()).expect("b waits too");
        assert!(left > 15 * S && left <= 20 * S && schedule, "{left:?}");
        // Its next change doubles from there.
        assert_eq!(b.changed(name, Instant::now()), 40 * S);
    }

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
