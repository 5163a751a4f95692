//! Worker policy shared by every adapter's worker: what to do with a job
//! after its handler ran, when to touch it, and the counters a worker
//! keeps. No I/O and no clock: adapters measure time and apply it.
//!
//! ```
//! use beanstalk_proto::retry::Backoff;
//! use beanstalk_proto::stats::JobStats;
//! use beanstalk_proto::worker::{touch_interval, FailurePolicy, Outcome};
//! use bytes::Bytes;
//! use std::time::Duration;
//!
//! // A job reserved for the third time, released twice before.
//! let stats = JobStats::parse(Bytes::from_static(b"---\nid: 8\nttr: 60\nreserves: 3\nreleases: 2\n"));
//! let policy = FailurePolicy::new(5, Backoff::new(Duration::from_secs(1), Duration::from_secs(60)));
//! assert_eq!(policy.on_failure(&stats), Outcome::Release { delay: Duration::from_secs(4) });
//! let last_try = FailurePolicy::new(3, Backoff::constant(Duration::ZERO));
//! assert_eq!(last_try.on_failure(&stats), Outcome::Bury);
//!
//! // Touch a 60 s job every 30 s while its handler runs.
//! assert_eq!(touch_interval(Duration::from_secs(60)), Duration::from_secs(30));
//! ```

use core::time::Duration;

use bytes::Bytes;

use crate::response::{Job, JobId};
use crate::retry::Backoff;
use crate::stats::JobStats;

/// A reserved job as a worker's handler sees it: the job, and its
/// `stats-job` taken right after it was reserved.
///
/// ```
/// use beanstalk_proto::worker::WorkerJob;
/// use beanstalk_proto::{Job, JobStats};
/// use bytes::Bytes;
///
/// let stats = JobStats::parse(Bytes::from_static(b"---\nid: 3\ntube: mail\nreserves: 2\n"));
/// let job = WorkerJob::new(Job::new(3, "hi"), stats);
/// assert_eq!((job.id(), job.tube(), job.attempt()), (3, "mail", 2));
/// ```
#[derive(Debug, Clone)]
pub struct WorkerJob {
    job: Job,
    stats: JobStats,
}

impl WorkerJob {
    /// A job and its stats.
    pub fn new(job: Job, stats: JobStats) -> Self {
        Self { job, stats }
    }

    /// The job's id.
    pub fn id(&self) -> JobId {
        self.job.id
    }

    /// The job's body.
    pub fn body(&self) -> &Bytes {
        &self.job.body
    }

    /// The tube it came from.
    pub fn tube(&self) -> &str {
        self.stats.tube.as_str()
    }

    /// Which try this is: 1 the first time the job is reserved (the
    /// server's `reserves` count, so tries whose worker died count too).
    pub fn attempt(&self) -> u64 {
        self.stats.reserves
    }

    /// The job's `stats-job` at the time it was reserved (priority, ttr,
    /// releases, the delay of its last release...).
    pub fn stats(&self) -> &JobStats {
        &self.stats
    }

    /// The job itself.
    pub fn into_job(self) -> Job {
        self.job
    }
}

/// What to do with a job once its handler is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// `delete`: the job is done.
    Delete,
    /// `release` with this delay (rounded up to whole seconds, the
    /// protocol's unit), keeping the job's priority: try again later.
    Release {
        /// How long the job stays delayed before it is ready again.
        delay: Duration,
    },
    /// `bury`, keeping the job's priority: set it aside until kicked.
    Bury,
}

impl Outcome {
    /// Release the job, ready again after `delay`.
    pub const fn release(delay: Duration) -> Self {
        Self::Release { delay }
    }

    /// The delay in whole seconds for `release`: rounded up, so a job is
    /// never retried sooner than asked, and saturating at `u32::MAX`.
    ///
    /// ```
    /// use beanstalk_proto::worker::Outcome;
    /// use std::time::Duration;
    /// assert_eq!(Outcome::release_seconds(Duration::from_millis(1500)), 2);
    /// assert_eq!(Outcome::release_seconds(Duration::ZERO), 0);
    /// ```
    pub fn release_seconds(delay: Duration) -> u32 {
        let whole = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
        u32::try_from(whole).unwrap_or(u32::MAX)
    }
}

impl From<()> for Outcome {
    /// A handler that returns `Ok(())` succeeded: delete the job.
    fn from((): ()) -> Self {
        Self::Delete
    }
}

/// What happens to a job whose handler failed: released with a backoff
/// delay, or buried once it has been tried `max_attempts` times.
///
/// Attempts are counted by the server (`reserves` in `stats-job`), so they
/// include tries whose worker died or whose time-to-run ran out, and they
/// survive worker restarts. The delay grows with the job's `releases`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct FailurePolicy {
    /// Bury the job when a try fails and it has been reserved this many
    /// times (0 or 1: bury after the first failure).
    pub max_attempts: u32,
    /// The release delay, by the job's `releases` count.
    pub backoff: Backoff,
}

impl Default for FailurePolicy {
    /// Five attempts; release delays of 1 s, 2 s, 4 s, ... up to 5 min.
    fn default() -> Self {
        Self::new(
            5,
            Backoff::new(Duration::from_secs(1), Duration::from_secs(300)),
        )
    }
}

impl FailurePolicy {
    /// Bury after `max_attempts` tries; release with `backoff` before that.
    pub const fn new(max_attempts: u32, backoff: Backoff) -> Self {
        Self {
            max_attempts,
            backoff,
        }
    }

    /// The outcome for a failed try of the job described by `stats` (taken
    /// when it was reserved).
    pub fn on_failure(&self, stats: &JobStats) -> Outcome {
        if stats.reserves >= u64::from(self.max_attempts) {
            Outcome::Bury
        } else {
            let releases = u32::try_from(stats.releases).unwrap_or(u32::MAX);
            Outcome::Release {
                delay: self.backoff.delay(releases),
            }
        }
    }
}

/// How often to touch a job with time-to-run `ttr` while its handler runs:
/// at half the TTR, or 2 s before it runs out if that is sooner, but never
/// more often than every third of the TTR.
///
/// The server keeps the last second of a TTR as a safety margin
/// (`DEADLINE_SOON`), so touching 2 s early keeps the job clear of it; for
/// very short TTRs, a third of the TTR still touches well before the end.
///
/// ```
/// use beanstalk_proto::worker::touch_interval;
/// use std::time::Duration;
/// let s = Duration::from_secs;
/// assert_eq!(touch_interval(s(120)), s(60));
/// assert_eq!(touch_interval(s(3)), s(1));
/// assert_eq!(touch_interval(s(2)), Duration::from_nanos(666_666_666));
/// ```
pub fn touch_interval(ttr: Duration) -> Duration {
    let half = ttr / 2;
    let early = ttr.saturating_sub(Duration::from_secs(2));
    half.min(early).max(ttr / 3)
}

#[cfg(target_has_atomic = "64")]
pub use counters::{CounterSnapshot, Counters};

#[cfg(target_has_atomic = "64")]
mod counters {
    use core::sync::atomic::{AtomicU64, Ordering};

    macro_rules! counters {
        ($( $(#[$doc:meta])* $field:ident, $add:ident; )*) => {
            /// A worker's counters, readable at any time from any thread
            /// (share it in an `Arc`).
            ///
            /// ```
            /// use beanstalk_proto::worker::Counters;
            /// let counters = Counters::default();
            /// counters.add_reserved();
            /// counters.add_succeeded();
            /// let now = counters.snapshot();
            /// assert_eq!((now.reserved, now.succeeded, now.buried), (1, 1, 0));
            /// ```
            #[derive(Debug, Default)]
            pub struct Counters {
                $( $field: AtomicU64, )*
            }

            impl Counters {
                $(
                    #[doc = concat!("Adds one to `", stringify!($field), "`.")]
                    pub fn $add(&self) {
                        self.$field.fetch_add(1, Ordering::Relaxed);
                    }
                )*

                /// The counts now.
                pub fn snapshot(&self) -> CounterSnapshot {
                    CounterSnapshot {
                        $( $field: self.$field.load(Ordering::Relaxed), )*
                    }
                }
            }

            /// The counts of a [`Counters`] at one moment.
            #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
            #[non_exhaustive]
            pub struct CounterSnapshot {
                $( $(#[$doc])* pub $field: u64, )*
            }
        };
    }

    counters! {
        /// Jobs reserved.
        reserved, add_reserved;
        /// Jobs deleted after their handler finished (success, or an
        /// explicit [`super::Outcome::Delete`]).
        succeeded, add_succeeded;
        /// Handler failures: errors and panics.
        failed, add_failed;
        /// Jobs released (after a failure, on request, or at shutdown).
        released, add_released;
        /// Jobs buried.
        buried, add_buried;
        /// Touches that kept a job reserved.
        touched, add_touched;
        /// Connections re-established after a failure.
        reconnects, add_reconnects;
        /// Jobs whose reservation was lost before they could be settled (the
        /// connection broke, or the time-to-run ran out): the server made
        /// them ready again, so nothing is lost, but they will run again.
        lost, add_lost;
    }

    impl Counters {
        /// Adds `n` to `reconnects`.
        pub fn add_reconnects_n(&self, n: u64) {
            self.reconnects.fetch_add(n, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn stats(reserves: u64, releases: u64) -> JobStats {
        JobStats::parse(Bytes::from(alloc::format!(
            "---\nreserves: {reserves}\nreleases: {releases}\n"
        )))
    }

    #[test]
    fn failure_policy_releases_with_growing_delay_then_buries() {
        let policy = FailurePolicy::new(
            4,
            Backoff::new(Duration::from_secs(2), Duration::from_secs(5)),
        );
        assert_eq!(
            policy.on_failure(&stats(1, 0)),
            Outcome::release(Duration::from_secs(2))
        );
        assert_eq!(
            policy.on_failure(&stats(2, 1)),
            Outcome::release(Duration::from_secs(4))
        );
        assert_eq!(
            policy.on_failure(&stats(3, 2)),
            Outcome::release(Duration::from_secs(5))
        );
        assert_eq!(policy.on_failure(&stats(4, 3)), Outcome::Bury);
        assert_eq!(
            FailurePolicy::new(0, Backoff::default()).on_failure(&stats(1, 0)),
            Outcome::Bury
        );
    }

    #[test]
    fn touch_interval_is_before_the_safety_margin() {
        for secs in 1..=600u64 {
            let ttr = Duration::from_secs(secs);
            let every = touch_interval(ttr);
            assert!(every > Duration::ZERO);
            assert!(every <= ttr / 2);
            if secs >= 4 {
                assert!(every <= ttr - Duration::from_secs(2), "ttr {secs}");
            }
        }
    }
}
