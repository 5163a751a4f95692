//! Worker policy shared by every adapter's worker: what to do with a job
//! after its handler ran, when to touch it, and the counters a worker
//! keeps. No I/O and no clock: adapters measure time and apply it.
//!
//! With `std`, the async adapters' worker is here too, written once over
//! [`WorkerRuntime`] (their connection, tasks and timers): the [`Pool`] of
//! [`Slot`]s, the loop each slot runs, the [`Handler`] it runs and the
//! [`Shutdown`] that stops it.
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

use core::fmt;
use core::marker::PhantomData;
use core::time::Duration;

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use bytes::Bytes;

use crate::api::AsyncCommands;
use crate::cmd::ReleaseOutcome;
use crate::endpoint::Endpoint;
use crate::error::Error;
use crate::options::Options;
use crate::response::{Job, JobId};
use crate::retry::Backoff;
use crate::stats::JobStats;
use crate::tube::Tube;

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
    /// assert_eq!(Outcome::release_seconds(Duration::MAX), u32::MAX);
    /// ```
    pub fn release_seconds(delay: Duration) -> u32 {
        // Saturating: rounding `Duration::MAX` up would overflow.
        let whole = delay
            .as_secs()
            .saturating_add(u64::from(delay.subsec_nanos() > 0));
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

/// A job's time-to-run from the seconds `stats-job` gives: at least one
/// (the server counts 0 as 1), and no more than beanstalkd's 32-bit count,
/// so that a figure no beanstalkd sends cannot overflow the clock when the
/// next touch is scheduled.
///
/// ```
/// use beanstalk_proto::worker::job_ttr;
/// use std::time::{Duration, Instant};
///
/// assert_eq!(job_ttr(0), Duration::from_secs(1));
/// assert_eq!(job_ttr(60), Duration::from_secs(60));
/// let longest = job_ttr(u64::MAX);
/// assert_eq!(longest, Duration::from_secs(u64::from(u32::MAX)));
/// assert!(Instant::now().checked_add(longest).is_some());
/// ```
pub fn job_ttr(seconds: u64) -> Duration {
    Duration::from_secs(seconds.clamp(1, u64::from(u32::MAX)))
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

/// Watches `tubes` and then ignores `default` unless it is one of them: a
/// worker slot's subscription. (A reconnecting client restores it by
/// itself after a reconnect.)
///
/// Written once over [`AsyncCommands`]; a blocking client runs it through
/// [`crate::api::Blocking`].
pub async fn subscribe<C>(client: &mut C, tubes: &[Tube]) -> Result<(), Error>
where
    C: AsyncCommands + ?Sized,
{
    for tube in tubes {
        client.watch(tube).await?;
    }
    if !tubes.contains(&Tube::DEFAULT) {
        client.ignore(Tube::DEFAULT).await?;
    }
    Ok(())
}

/// Deletes, releases or buries job `id` as `outcome` says, keeping its
/// `priority`, and counts it in `counters` (`succeeded`, `released` or
/// `buried`; a release the server turned into a bury counts as buried).
///
/// ```
/// use beanstalk_proto::api::{now_or_never, Blocking};
/// use beanstalk_proto::replay::Replay;
/// use beanstalk_proto::worker::{settle, Counters, Outcome};
/// use std::time::Duration;
///
/// let mut server = Replay::new(b"RELEASED\r\n");
/// let counters = Counters::default();
/// let outcome = Outcome::release(Duration::from_secs(3));
/// let settled = now_or_never(settle(&mut Blocking(&mut server), 7, 100, outcome, &counters));
/// assert!(matches!(settled, Some(Ok(()))));
/// assert_eq!(server.sent(), b"release 7 100 3\r\n");
/// assert_eq!(counters.snapshot().released, 1);
/// ```
pub async fn settle<C>(
    client: &mut C,
    id: JobId,
    priority: u32,
    outcome: Outcome,
    counters: &Counters,
) -> Result<(), Error>
where
    C: AsyncCommands + ?Sized,
{
    match outcome {
        Outcome::Release { delay } => {
            let released = client
                .release(id, priority, Outcome::release_seconds(delay))
                .await?;
            match released {
                ReleaseOutcome::Buried => counters.add_buried(),
                _ => counters.add_released(),
            }
        }
        Outcome::Bury => {
            client.bury(id, priority).await?;
            counters.add_buried();
        }
        Outcome::Delete => {
            client.delete(id).await?;
            counters.add_succeeded();
        }
    }
    Ok(())
}

/// Whether a slot whose [`settle`] failed with `error` should drop its
/// connection: the server could not do it (`OUT_OF_MEMORY`...) and still
/// holds the job, and closing makes it release the job now rather than at
/// the end of its time-to-run. After a broken connection, `NOT_FOUND` (the
/// TTR ran out) or a lost lease, the server has the job back already.
pub fn should_disconnect_after_failed_settle(error: &Error) -> bool {
    !error.is_connection_error() && !matches!(error, Error::NotFound | Error::LeaseLost { .. })
}

/// A worker's validated settings, shared by all its slots: what every
/// adapter's [`WorkerBuilder`] produces.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct WorkerSettings {
    /// The server.
    pub endpoint: Endpoint,
    /// Timeouts and limits of each slot's connection.
    pub options: Options,
    /// The tubes to reserve from, without repeats; `default` when none
    /// were given.
    pub tubes: Vec<Tube>,
    /// How many jobs run at once, each on its own connection (at least 1).
    pub concurrency: usize,
    /// What happens to a job whose handler failed.
    pub failure: FailurePolicy,
    /// The delay between reconnect attempts.
    pub reconnect: Backoff,
    /// How long handlers may run on after shutdown is triggered.
    pub grace: Duration,
    /// Whether jobs are touched while their handler runs.
    pub auto_touch: bool,
}

/// A worker type an adapter builds from [`WorkerSettings`].
pub trait FromWorkerSettings: Sized {
    /// Makes the worker.
    fn from_settings(settings: WorkerSettings) -> Self;
}

/// Configures a worker of type `W`; each adapter names it
/// `worker::WorkerBuilder` and returns it from `Worker::builder`.
///
/// ```
/// use beanstalk_proto::worker::{FromWorkerSettings, WorkerBuilder, WorkerSettings};
///
/// struct MyWorker(WorkerSettings);
/// impl FromWorkerSettings for MyWorker {
///     fn from_settings(settings: WorkerSettings) -> Self {
///         Self(settings)
///     }
/// }
/// let worker: MyWorker = WorkerBuilder::new("127.0.0.1:11300").tube("emails").tube("emails").concurrency(4).build()?;
/// assert_eq!((worker.0.tubes.len(), worker.0.concurrency), (1, 4));
/// assert!(WorkerBuilder::<MyWorker>::new("127.0.0.1").tube("bad name").build().is_err());
/// # Ok::<(), beanstalk_proto::Error>(())
/// ```
#[must_use]
pub struct WorkerBuilder<W> {
    address: String,
    options: Options,
    tubes: Vec<String>,
    concurrency: usize,
    failure: FailurePolicy,
    reconnect: Backoff,
    grace: Duration,
    auto_touch: bool,
    worker: PhantomData<fn() -> W>,
}

impl<W> WorkerBuilder<W> {
    /// A worker for the server at `address` (any form [`Endpoint`] parses):
    /// one slot, the `default` tube, the default [`FailurePolicy`], a 30 s
    /// shutdown grace, and automatic touching.
    pub fn new(address: &str) -> Self {
        Self {
            address: address.to_string(),
            options: Options::default(),
            tubes: Vec::new(),
            concurrency: 1,
            failure: FailurePolicy::default(),
            reconnect: Backoff::default(),
            grace: Duration::from_secs(30),
            auto_touch: true,
            worker: PhantomData,
        }
    }

    /// Adds a tube to reserve from. Without any, the worker watches
    /// `default`.
    pub fn tube(mut self, tube: impl Into<String>) -> Self {
        self.tubes.push(tube.into());
        self
    }

    /// Adds tubes to reserve from.
    pub fn tubes<I, T>(mut self, tubes: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.tubes.extend(tubes.into_iter().map(Into::into));
        self
    }

    /// How many jobs run at once (default 1); each has its own connection.
    pub fn concurrency(mut self, jobs: usize) -> Self {
        self.concurrency = jobs.max(1);
        self
    }

    /// What happens to a job whose handler failed (default: release with
    /// 1 s, 2 s, 4 s... up to 5 min delays, bury at the 5th try).
    pub fn failure_policy(mut self, policy: FailurePolicy) -> Self {
        self.failure = policy;
        self
    }

    /// Buries a failing job once it has been reserved this many times.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.failure.max_attempts = attempts;
        self
    }

    /// The release delay after a failure, by the job's `releases` count.
    pub fn release_backoff(mut self, backoff: Backoff) -> Self {
        self.failure.backoff = backoff;
        self
    }

    /// The delay between reconnect attempts (default 50 ms doubling to
    /// 5 s). Workers retry without end.
    pub fn reconnect_backoff(mut self, backoff: Backoff) -> Self {
        self.reconnect = backoff;
        self
    }

    /// How long in-flight handlers may run on after shutdown is triggered
    /// before their jobs are released (default 30 s).
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Whether jobs are touched while their handler runs (default true):
    /// every [`touch_interval`] of the job's TTR, on the job's own
    /// connection.
    pub fn auto_touch(mut self, touch: bool) -> Self {
        self.auto_touch = touch;
        self
    }

    /// Timeouts and limits of the worker's connections.
    pub fn options(mut self, options: Options) -> Self {
        self.options = options;
        self
    }

    /// Checks the address, the tube names and the timeouts, and returns
    /// the settings. A zero timeout is refused here
    /// ([`CommandError::ZeroTimeout`](crate::CommandError::ZeroTimeout)):
    /// every slot's connect would refuse it, and the slots would retry
    /// for ever without reserving a job.
    pub fn settings(self) -> Result<WorkerSettings, Error> {
        let endpoint = self.address.parse()?;
        let options = self.options.checked()?;
        let mut tubes = Vec::new();
        for name in &self.tubes {
            let tube = Tube::new(name)?;
            if !tubes.contains(&tube) {
                tubes.push(tube);
            }
        }
        if tubes.is_empty() {
            tubes.push(Tube::DEFAULT);
        }
        Ok(WorkerSettings {
            endpoint,
            options,
            tubes,
            concurrency: self.concurrency,
            failure: self.failure,
            reconnect: self.reconnect,
            grace: self.grace,
            auto_touch: self.auto_touch,
        })
    }
}

impl<W: FromWorkerSettings> WorkerBuilder<W> {
    /// Checks the address, the tube names and the timeouts (see
    /// [`settings`](Self::settings)), and makes the worker.
    pub fn build(self) -> Result<W, Error> {
        self.settings().map(W::from_settings)
    }
}

// Written out because derives would require `W: Clone`/`W: Debug`.
impl<W> Clone for WorkerBuilder<W> {
    fn clone(&self) -> Self {
        Self {
            address: self.address.clone(),
            tubes: self.tubes.clone(),
            worker: PhantomData,
            ..*self
        }
    }
}

impl<W> fmt::Debug for WorkerBuilder<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerBuilder")
            .field("address", &self.address)
            .field("tubes", &self.tubes)
            .field("concurrency", &self.concurrency)
            .field("failure", &self.failure)
            .field("grace", &self.grace)
            .field("auto_touch", &self.auto_touch)
            .finish_non_exhaustive()
    }
}

#[cfg(all(feature = "std", target_has_atomic = "64"))]
mod pool;
#[cfg(all(feature = "std", target_has_atomic = "64"))]
mod race;
#[cfg(all(feature = "std", target_has_atomic = "64"))]
mod runtime;
#[cfg(all(feature = "std", target_has_atomic = "64"))]
mod shutdown;
#[cfg(all(feature = "std", target_has_atomic = "64"))]
mod slot;

#[cfg(all(feature = "std", target_has_atomic = "64"))]
pub use pool::{Pool, SlotFuture};
#[cfg(all(feature = "std", target_has_atomic = "64"))]
pub use race::Panicked;
#[cfg(all(feature = "std", target_has_atomic = "64"))]
pub use runtime::{BoxError, Handler, HandlerOutput, WorkerEvent, WorkerRuntime};
#[cfg(all(feature = "std", target_has_atomic = "64"))]
pub use shutdown::{Shutdown, Triggered};
#[cfg(all(feature = "std", target_has_atomic = "64"))]
pub use slot::Slot;

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

        /// Brings `reconnects` up to date with a client that has reconnected
        /// `total` times so far, of which `counted` were added already.
        pub fn add_reconnects_since(&self, counted: &mut u64, total: u64) {
            self.add_reconnects_n(total.saturating_sub(*counted));
            *counted = total;
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
    fn a_zero_timeout_is_refused_when_the_worker_is_built() {
        for (options, which) in [
            (Options::default().read_timeout(Duration::ZERO), "read"),
            (Options::default().write_timeout(Duration::ZERO), "write"),
            (
                Options::default().connect_timeout(Duration::ZERO),
                "connect",
            ),
        ] {
            let built = WorkerBuilder::<()>::new("127.0.0.1")
                .options(options)
                .settings();
            assert!(
                matches!(
                    built,
                    Err(Error::Command(crate::CommandError::ZeroTimeout { which: w })) if w == which
                ),
                "{which}: {built:?}"
            );
        }
        // Below the floor is not zero: it waits the floor.
        let tiny = Options::default().read_timeout(Duration::from_nanos(1));
        let settings = WorkerBuilder::<()>::new("127.0.0.1")
            .options(tiny)
            .settings()
            .unwrap();
        assert_eq!(settings.options.read_timeout, crate::options::MIN_TIMEOUT);
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
