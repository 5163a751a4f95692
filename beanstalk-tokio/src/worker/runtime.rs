//! The core's worker slot on tokio: handlers on tokio tasks, and the
//! slot's events as `tracing` events.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use proto::worker::{HandlerOutput, SlotFuture, WorkerEvent, WorkerRuntime};
use tokio::task::JoinHandle;

use crate::client::Client;

/// A handler's tokio task.
#[derive(Debug)]
pub struct HandlerTask(JoinHandle<HandlerOutput>);

impl Future for HandlerTask {
    type Output = Option<HandlerOutput>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // The slot catches a handler's panic itself, so a join error means
        // the task was cancelled: the runtime is shutting down.
        Pin::new(&mut self.0).poll(cx).map(Result::ok)
    }
}

/// A worker slot's tokio task.
#[derive(Debug)]
pub struct SlotTask(JoinHandle<()>);

impl Future for SlotTask {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx).map(|ended| {
            if let Err(error) = ended {
                crate::event!(error, %error, "worker slot ended abnormally");
                let _ = error;
            }
        })
    }
}

impl WorkerRuntime for Client {
    type Task = HandlerTask;
    type SlotTask = SlotTask;

    fn spawn_slot(slot: SlotFuture) -> SlotTask {
        SlotTask(tokio::spawn(slot))
    }

    fn spawn(handler: impl Future<Output = HandlerOutput> + Send + 'static) -> HandlerTask {
        HandlerTask(tokio::spawn(handler))
    }

    async fn cancel(task: HandlerTask) {
        task.0.abort();
        let _ = task.0.await;
    }

    fn observe_worker(slot: usize, event: WorkerEvent<'_>) {
        #[cfg(feature = "tracing")]
        match event {
            WorkerEvent::CannotWatch(error) => {
                tracing::warn!(slot, %error, "cannot watch the worker's tubes; trying again");
            }
            WorkerEvent::Reserved(job) => {
                tracing::debug!(slot, job, "reserved");
            }
            WorkerEvent::ReserveFailed(error) => {
                tracing::warn!(slot, %error, "reserve failed");
            }
            WorkerEvent::JobTooLarge(job) => {
                tracing::warn!(
                    slot,
                    job,
                    "job larger than the worker's max_job_size; burying it"
                );
            }
            WorkerEvent::DeadlineSoonWhileReserving => {
                tracing::warn!(
                    slot,
                    "DEADLINE_SOON while reserving; dropping the connection"
                );
            }
            WorkerEvent::Touched(job) => {
                tracing::trace!(slot, job, "touched");
            }
            WorkerEvent::TouchRetry(job, error) => {
                tracing::warn!(slot, job, %error, "touch failed; retrying");
            }
            WorkerEvent::ReservationLost(job, error) => {
                tracing::warn!(slot, job, %error, "reservation lost");
            }
            WorkerEvent::HandlerFailed(job, error) => {
                tracing::warn!(slot, job, %error, "handler failed");
            }
            WorkerEvent::HandlerPanicked(job) => {
                tracing::error!(slot, job, "handler panicked");
            }
            WorkerEvent::HandlerCancelled(job) => {
                tracing::info!(
                    slot,
                    job,
                    "handler cancelled at shutdown; releasing the job"
                );
            }
            WorkerEvent::Settled {
                job,
                outcome,
                attempt,
            } => {
                tracing::debug!(slot, job, ?outcome, attempt, "settled");
            }
            WorkerEvent::SettlingFailed(job, error) => {
                tracing::warn!(slot, job, %error, "settling failed");
            }
            WorkerEvent::Lost(job, why) => {
                tracing::warn!(slot, job, why, "job handed back to the server");
            }
            _ => {}
        }
        #[cfg(not(feature = "tracing"))]
        let _ = (slot, event);
    }
}
