//! What the worker's slot loop needs of an adapter: a reconnecting
//! connection ([`Reconnect`]), a way to run a handler on a task of its own,
//! and somewhere to report what happened.

use alloc::boxed::Box;
use core::future::Future;
use core::time::Duration;

use crate::error::Error;
use crate::reconnecting::Reconnect;
use crate::response::JobId;

use super::pool::SlotFuture;
use super::race::Panicked;
use super::{Outcome, WorkerJob};

/// The error a handler may return: anything that converts into a boxed
/// error (`String`, `&str`, any `std::error::Error`).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What a worker runs for each job.
///
/// `Ok(outcome)` settles the job as asked ([`Outcome::Delete`],
/// [`Outcome::Release`] or [`Outcome::Bury`]); an error (or a panic) is a
/// failed try, settled by the worker's [`super::FailurePolicy`].
/// Implemented for every `Fn(WorkerJob) -> impl Future<Output = Result<T,
/// E>>` where `T` converts into an [`Outcome`] (`()` means delete) and `E`
/// into a [`BoxError`]:
///
/// ```
/// use beanstalk_proto::worker::{Handler, Outcome, WorkerJob};
/// use std::time::Duration;
///
/// // Delete on success, failure policy on error.
/// let simple = |job: WorkerJob| async move {
///     std::str::from_utf8(job.body()).map(|_| ()).map_err(|e| e.to_string())
/// };
/// # fn is_handler(_: impl Handler) {}
/// # is_handler(simple);
///
/// // Choose the outcome yourself.
/// let explicit = |job: WorkerJob| async move {
///     if job.body().is_empty() {
///         return Ok::<_, String>(Outcome::Bury);
///     }
///     if job.attempt() < 3 {
///         return Ok(Outcome::release(Duration::from_secs(10)));
///     }
///     Ok(Outcome::Delete)
/// };
/// # is_handler(explicit);
/// ```
pub trait Handler: Send + Sync + 'static {
    /// Handles one job.
    fn handle(&self, job: WorkerJob) -> impl Future<Output = Result<Outcome, BoxError>> + Send;
}

impl<F, Fut, T, E> Handler for F
where
    F: Fn(WorkerJob) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<T, E>> + Send,
    T: Into<Outcome>,
    E: Into<BoxError>,
{
    fn handle(&self, job: WorkerJob) -> impl Future<Output = Result<Outcome, BoxError>> + Send {
        let future = self(job);
        async move { future.await.map(Into::into).map_err(Into::into) }
    }
}

/// An adapter's connection as a worker slot drives it: reconnecting
/// ([`Reconnect`]), plus tasks for handlers, so that a handler that hogs
/// its thread does not hold back the touches that keep its job.
pub trait WorkerRuntime: Reconnect + 'static {
    /// A task running a handler; completes with its output, or `None` if
    /// the runtime dropped it (shutting down).
    type Task: Future<Output = Option<HandlerOutput>> + Send + Unpin;

    /// Runs a handler on a task of its own.
    fn spawn(handler: impl Future<Output = HandlerOutput> + Send + 'static) -> Self::Task;

    /// Cancels `task` and completes once it is gone, so a handler has
    /// stopped before its job is released.
    fn cancel(task: Self::Task) -> impl Future<Output = ()> + Send;

    /// A task running a worker slot; completes when the slot has wound
    /// down.
    type SlotTask: Future<Output = ()> + Send;

    /// Runs a worker slot on a task of its own.
    fn spawn_slot(slot: SlotFuture) -> Self::SlotTask;

    /// Something a slot did, for logging; the tokio adapter turns it into a
    /// `tracing` event. Does nothing by default.
    fn observe_worker(slot: usize, event: WorkerEvent<'_>) {
        let _ = (slot, event);
    }
}

/// What a handler's task yields: the handler's result, or [`Panicked`] if
/// it panicked (caught on its task, so every runtime reports it alike).
pub type HandlerOutput = Result<Result<Outcome, BoxError>, Panicked>;

/// What a worker slot reports to [`WorkerRuntime::observe_worker`].
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum WorkerEvent<'a> {
    /// Watching the worker's tubes failed; the slot pauses and tries again.
    CannotWatch(&'a Error),
    /// A job was reserved.
    Reserved(JobId),
    /// `reserve` failed; the slot pauses and tries again.
    ReserveFailed(&'a Error),
    /// The job reserved is larger than the worker's `max_job_size`: the
    /// slot buries it (see [`Error::JobTooLarge`]).
    JobTooLarge(JobId),
    /// `DEADLINE_SOON` came back from a reserve: the slot drops its
    /// connection so the server releases the job it holds.
    DeadlineSoonWhileReserving,
    /// The job was touched.
    Touched(JobId),
    /// The server could not touch the job; it is tried again shortly.
    TouchRetry(JobId, &'a Error),
    /// The job's reservation is gone (its TTR ran out, or its connection).
    ReservationLost(JobId, &'a Error),
    /// The handler returned an error.
    HandlerFailed(JobId, &'a BoxError),
    /// The handler panicked.
    HandlerPanicked(JobId),
    /// The shutdown grace period ran out; the handler was cancelled and
    /// its job is released.
    HandlerCancelled(JobId),
    /// The job was settled as `outcome`, on its `attempt`-th reservation.
    Settled {
        /// The job.
        job: JobId,
        /// What was done with it.
        outcome: Outcome,
        /// How many times it has been reserved.
        attempt: u64,
    },
    /// Deleting, releasing or burying the job failed.
    SettlingFailed(JobId, &'a Error),
    /// The slot gave the job back to the server (counted as `lost`), and why.
    Lost(JobId, &'static str),
}

/// How long a runtime timer must wait to reach `deadline`.
pub(super) fn until(deadline: std::time::Instant) -> Duration {
    deadline.saturating_duration_since(std::time::Instant::now())
}
