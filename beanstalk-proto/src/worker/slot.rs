//! One job at a time on one connection: the loop every worker slot runs,
//! written once for the async adapters.

use alloc::sync::Arc;
use core::future::poll_fn;
use core::pin::{Pin, pin};
use core::task::Poll;
use core::time::Duration;
use std::time::Instant;

use crate::api::AsyncCommands;
use crate::error::Error;
use crate::reconnecting::Reconnecting;
use crate::response::{Job, JobId};
use crate::retry::ReconnectPolicy;
use crate::stats::JobStats;

use super::race::{CatchUnwind, Either, Panicked, first, never};
use super::runtime::{Handler, HandlerOutput, WorkerEvent, WorkerRuntime, until};
use super::{Counters, Outcome, Shutdown, WorkerJob, WorkerSettings, job_ttr, touch_interval};

/// The pause after the server refused a `watch` or answered a `reserve`
/// unexpectedly, so a misbehaving server is not polled in a tight loop.
const SERVER_ERROR_PAUSE: Duration = Duration::from_millis(200);

/// The retry delay of a touch the server could not do (`OUT_OF_MEMORY`...).
const TOUCH_RETRY: Duration = Duration::from_millis(250);

/// How long a slot that stops waits for its `quit` to go out.
const QUIT_TIMEOUT: Duration = Duration::from_secs(1);

/// How a job's handler ended.
enum Finished {
    /// It returned, panicked, or its task was dropped (`None`).
    Returned(Option<HandlerOutput>),
    /// The grace period after shutdown ran out; it was cancelled.
    Cancelled,
}

/// One worker slot: its own reconnecting connection, reserving one job at
/// a time, running the handler on a task of its own while touching the job
/// on schedule, then settling it. An adapter's `Worker` runs `concurrency`
/// of these, each on a task, until the [`Shutdown`] fires.
#[derive(Debug)]
pub struct Slot<C, H> {
    /// Names the slot in events.
    index: usize,
    settings: Arc<WorkerSettings>,
    handler: Arc<H>,
    counters: Arc<Counters>,
    shutdown: Shutdown,
    client: Reconnecting<C>,
    reconnects_counted: u64,
}

impl<C: WorkerRuntime, H: Handler> Slot<C, H> {
    /// Slot number `index` of a worker. Its connection opens on the first
    /// reserve and is replaced, with the settings' backoff and without end,
    /// whenever it breaks.
    pub fn new(
        index: usize,
        settings: Arc<WorkerSettings>,
        handler: Arc<H>,
        counters: Arc<Counters>,
        shutdown: Shutdown,
    ) -> Self {
        let policy = ReconnectPolicy::default()
            .backoff(settings.reconnect)
            .max_attempts(None);
        let client = Reconnecting::lazy(settings.endpoint.clone(), settings.options, policy);
        Self {
            index,
            settings,
            handler,
            counters,
            shutdown,
            client,
            reconnects_counted: 0,
        }
    }

    /// Reserves and handles jobs until the shutdown fires, then winds down
    /// (see the adapters' `Worker` for what happens to jobs in flight).
    pub async fn run(mut self) {
        let shutdown = self.shutdown.clone();
        // Lost connections are replaced inside `watch`; what comes out is
        // the server's refusal (`OUT_OF_MEMORY`, `INTERNAL_ERROR`), which
        // passes. A slot that stopped there would leave the worker short
        // of it, quietly, for ever.
        loop {
            let watched = match first(shutdown.triggered(), self.watch()).await {
                Either::Left(()) => return,
                Either::Right(watched) => watched,
            };
            let Err(error) = watched else { break };
            self.observe(WorkerEvent::CannotWatch(&error));
            let paused = first(shutdown.triggered(), C::sleep(SERVER_ERROR_PAUSE));
            if let Either::Left(()) = paused.await {
                return;
            }
        }
        loop {
            // Dropping a waiting reserve closes its connection: the server
            // then releases any job it was handing over, so none is lost.
            let reserved = match first(shutdown.triggered(), self.client.reserve()).await {
                Either::Left(()) => break,
                Either::Right(reserved) => reserved,
            };
            self.count_reconnects();
            match reserved {
                Ok(job) => self.process(job).await,
                Err(Error::JobTooLarge { id, .. }) => self.bury_too_large(id).await,
                Err(error) => {
                    if let Error::DeadlineSoon = error {
                        // This connection holds a job in its last second.
                        // Slots settle or drop every job before reserving,
                        // so it is a job whose settling failed: closing the
                        // connection makes the server release it now.
                        self.observe(WorkerEvent::DeadlineSoonWhileReserving);
                        self.client.disconnect();
                    } else {
                        self.observe(WorkerEvent::ReserveFailed(&error));
                    }
                    // Either way, a server that keeps answering so is not
                    // polled in a tight loop.
                    let paused = first(shutdown.triggered(), C::sleep(SERVER_ERROR_PAUSE));
                    if let Either::Left(()) = paused.await {
                        break;
                    }
                }
            }
        }
        if self.client.is_connected() {
            let _ = first(C::sleep(QUIT_TIMEOUT), self.client.quit()).await;
        }
        self.count_reconnects();
    }

    /// Watches the worker's tubes and ignores `default` unless it is one.
    async fn watch(&mut self) -> Result<(), Error> {
        super::subscribe(&mut self.client, &self.settings.tubes).await
    }

    fn observe(&self, event: WorkerEvent<'_>) {
        C::observe_worker(self.index, event);
    }

    fn count_reconnects(&mut self) {
        let total = self.client.reconnects();
        self.counters
            .add_reconnects_since(&mut self.reconnects_counted, total);
    }

    /// Runs the handler for one reserved job and settles the job.
    async fn process(&mut self, job: Job) {
        let reserved_at = Instant::now();
        let id = job.id;
        let generation = self.client.generation();
        self.counters.add_reserved();
        self.observe(WorkerEvent::Reserved(id));

        // `stats-job` gives the TTR to touch by, and the counts the failure
        // policy needs.
        let Some(stats) = self.stats_of_held_job(id, generation).await else {
            return;
        };
        let every = touch_interval(job_ttr(stats.ttr));
        let priority = stats.pri;

        let handler = Arc::clone(&self.handler);
        let delivered = WorkerJob::new(job, stats.clone());
        let task = C::spawn(CatchUnwind::new(
            async move { handler.handle(delivered).await },
        ));
        let (finished, lost) = self.supervise(id, task, reserved_at + every, every).await;

        let outcome = match finished {
            Finished::Cancelled => {
                self.observe(WorkerEvent::HandlerCancelled(id));
                Outcome::release(Duration::ZERO)
            }
            Finished::Returned(Some(Ok(Ok(outcome)))) => outcome,
            Finished::Returned(Some(Ok(Err(error)))) => {
                self.counters.add_failed();
                self.observe(WorkerEvent::HandlerFailed(id, &error));
                self.settings.failure.on_failure(&stats)
            }
            Finished::Returned(Some(Err(Panicked)) | None) => {
                self.counters.add_failed();
                self.observe(WorkerEvent::HandlerPanicked(id));
                self.settings.failure.on_failure(&stats)
            }
        };
        if lost {
            self.lost(id, "reservation lost while the handler ran");
            return;
        }
        self.settle(id, priority, outcome, stats.reserves).await;
    }

    /// Waits for the handler, touching the job on schedule, and cancels the
    /// handler if shutdown's grace period runs out. Returns how it ended
    /// and whether the reservation was lost meanwhile.
    async fn supervise(
        &mut self,
        id: JobId,
        mut task: C::Task,
        mut next_touch: Instant,
        every: Duration,
    ) -> (Finished, bool) {
        let shutdown = self.shutdown.clone();
        let mut lost = false;
        // When the shutdown came, if it has; the grace period runs from
        // then. Kept as a start rather than an end, so that a grace period
        // too long for the clock (`Duration::MAX`) is simply endless.
        let mut stopping_since: Option<Instant> = None;
        loop {
            let touching = self.settings.auto_touch && !lost;
            // The branches are built anew each time round, from the
            // deadlines as they stand now.
            let event = {
                let touch_in = touching.then(|| until(next_touch));
                let grace = self.settings.grace;
                let grace_in = stopping_since.map(|since| grace.saturating_sub(since.elapsed()));
                let stopping = shutdown.triggered();
                let mut touch = pin!(async move {
                    match touch_in {
                        Some(delay) => C::sleep(delay).await,
                        None => never().await,
                    }
                });
                let mut stop = pin!(async move {
                    match grace_in {
                        None => stopping.await,
                        Some(delay) => C::sleep(delay).await,
                    }
                });
                poll_fn(|cx| {
                    if let Poll::Ready(done) = Pin::new(&mut task).poll(cx) {
                        return Poll::Ready(Event::Done(done));
                    }
                    if touch.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Event::Touch);
                    }
                    stop.as_mut().poll(cx).map(|()| Event::Stop)
                })
                .await
            };
            match event {
                Event::Done(done) => return (Finished::Returned(done), lost),
                Event::Touch => {
                    match self.client.touch(id).await {
                        Ok(()) => {
                            self.counters.add_touched();
                            self.observe(WorkerEvent::Touched(id));
                            next_touch = Instant::now() + every;
                        }
                        Err(Error::Server(error)) => {
                            self.observe(WorkerEvent::TouchRetry(id, &Error::Server(error)));
                            next_touch = Instant::now() + TOUCH_RETRY.min(every);
                        }
                        Err(error) => {
                            // NOT_FOUND (the TTR ran out), a lost lease or a
                            // broken connection: the server has the job back.
                            self.observe(WorkerEvent::ReservationLost(id, &error));
                            lost = true;
                        }
                    }
                    self.count_reconnects();
                }
                Event::Stop if stopping_since.is_none() => {
                    stopping_since = Some(Instant::now());
                }
                Event::Stop => {
                    // Wait for the cancellation, so the handler is gone
                    // before its job is released.
                    C::cancel(task).await;
                    return (Finished::Cancelled, lost);
                }
            }
        }
    }

    /// Deletes, releases or buries the job as `outcome` says.
    async fn settle(&mut self, id: JobId, priority: u32, outcome: Outcome, attempt: u64) {
        let result = super::settle(&mut self.client, id, priority, outcome, &self.counters).await;
        self.count_reconnects();
        match result {
            Ok(()) => self.observe(WorkerEvent::Settled {
                job: id,
                outcome,
                attempt,
            }),
            Err(error) => {
                if super::should_disconnect_after_failed_settle(&error) {
                    self.client.disconnect();
                }
                self.observe(WorkerEvent::SettlingFailed(id, &error));
                self.lost(id, "settling failed");
            }
        }
    }

    /// A job past the worker's `max_job_size` was reserved (its body read
    /// and dropped): it is buried with its own priority. Left to the
    /// server, every reserve would get it again, ahead of every job behind
    /// it; buried, it waits for a `kick` once the limit is raised.
    async fn bury_too_large(&mut self, id: JobId) {
        let generation = self.client.generation();
        self.counters.add_reserved();
        self.observe(WorkerEvent::JobTooLarge(id));
        // Its priority, to bury it with.
        let Some(stats) = self.stats_of_held_job(id, generation).await else {
            return;
        };
        self.settle(id, stats.pri, Outcome::Bury, stats.reserves)
            .await;
    }

    /// `stats-job` of job `id`, reserved on connection `generation`; `None`
    /// once the job is handed back to the server and counted lost.
    ///
    /// `stats-job` is idempotent, so a reconnecting client may send it
    /// again on a new connection: then the job is no longer ours. It is
    /// raced with the shutdown, since with the server gone it would be
    /// sent again for as long as the server stays away.
    async fn stats_of_held_job(&mut self, id: JobId, generation: u64) -> Option<JobStats> {
        let shutdown = self.shutdown.clone();
        match first(shutdown.triggered(), self.client.stats_job(id)).await {
            Either::Right(Ok(stats)) if self.client.generation() == generation => Some(stats),
            asked => {
                if self.client.generation() == generation {
                    // Still on the connection that holds the job, but its
                    // state is unknown (or the job is not to be handled
                    // now): make sure the server has it back, with its own
                    // priority.
                    self.client.disconnect();
                }
                let why = match asked {
                    Either::Left(()) => "shutdown before the job's stats came",
                    Either::Right(_) => "stats-job failed",
                };
                self.lost(id, why);
                None
            }
        }
    }

    fn lost(&self, id: JobId, why: &'static str) {
        self.counters.add_lost();
        self.observe(WorkerEvent::Lost(id, why));
    }
}

/// What woke a slot while its handler runs.
enum Event {
    Done(Option<HandlerOutput>),
    Touch,
    Stop,
}
