//! One job at a time on one connection: the loop each worker slot runs.

use std::sync::Arc;
use std::time::Duration;

use proto::retry::ReconnectPolicy;
use proto::worker::{Counters, Outcome, touch_interval};
use proto::{AsyncCommands, Error, Job, JobStats};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, sleep_until};

use super::{BoxError, Handler, Settings, Shutdown, WorkerJob};
use crate::reconnecting::ReconnectingClient;

/// The pause after an unexpected reply to `reserve`, so a misbehaving
/// server is not polled in a tight loop.
const RESERVE_ERROR_PAUSE: Duration = Duration::from_millis(200);

/// The retry delay of a touch the server could not do (`OUT_OF_MEMORY`...).
const TOUCH_RETRY: Duration = Duration::from_millis(250);

pub(super) struct Slot<H> {
    /// Names the slot in events.
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    index: usize,
    settings: Arc<Settings>,
    handler: Arc<H>,
    counters: Arc<Counters>,
    shutdown: Shutdown,
    client: ReconnectingClient,
    reconnects_counted: u64,
}

/// How a job's handler ended.
enum Finished {
    /// It returned (or panicked: the join error).
    Returned(Result<Result<Outcome, BoxError>, tokio::task::JoinError>),
    /// The grace period after shutdown ran out; it was cancelled.
    Cancelled,
}

impl<H: Handler> Slot<H> {
    pub(super) fn new(
        index: usize,
        settings: Arc<Settings>,
        handler: Arc<H>,
        counters: Arc<Counters>,
        shutdown: Shutdown,
    ) -> Self {
        let policy = ReconnectPolicy::default()
            .backoff(settings.reconnect)
            .max_attempts(None);
        let client = ReconnectingClient::lazy(settings.endpoint.clone(), settings.options, policy);
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

    pub(super) async fn run(mut self) {
        let shutdown = self.shutdown.clone();
        let watched = tokio::select! {
            biased;
            () = shutdown.triggered() => return,
            watched = self.watch() => watched,
        };
        if let Err(error) = watched {
            crate::event!(error, slot = self.index, %error, "cannot watch the worker's tubes");
            let _ = error;
            return;
        }
        loop {
            // Dropping a waiting reserve closes its connection: the server
            // then releases any job it was handing over, so none is lost.
            let reserved = tokio::select! {
                biased;
                () = shutdown.triggered() => break,
                reserved = self.client.reserve() => reserved,
            };
            self.count_reconnects();
            match reserved {
                Ok(job) => self.process(job).await,
                Err(Error::DeadlineSoon) => {
                    // This connection holds a job in its last second. Slots
                    // settle or drop every job before reserving, so it is a
                    // job whose settling failed: closing the connection
                    // makes the server release it now.
                    crate::event!(
                        warn,
                        slot = self.index,
                        "DEADLINE_SOON while reserving; dropping the connection"
                    );
                    self.client.disconnect();
                }
                Err(error) => {
                    crate::event!(warn, slot = self.index, %error, "reserve failed");
                    let _ = error;
                    tokio::select! {
                        () = shutdown.triggered() => break,
                        () = sleep(RESERVE_ERROR_PAUSE) => {}
                    }
                }
            }
        }
        if self.client.is_connected() {
            let _ = tokio::time::timeout(Duration::from_secs(1), self.client.quit()).await;
        }
        self.count_reconnects();
    }

    /// Watches the worker's tubes and ignores `default` unless it is one.
    async fn watch(&mut self) -> Result<(), Error> {
        proto::worker::subscribe(&mut self.client, &self.settings.tubes).await
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
        crate::event!(debug, slot = self.index, job = id, "reserved");

        // `stats-job` gives the TTR to touch by, and the counts the failure
        // policy needs. It is idempotent, so a reconnecting client may send
        // it again on a new connection: then the job is no longer ours.
        let stats = match self.client.stats_job(id).await {
            Ok(stats) if self.client.generation() == generation => stats,
            _ => {
                if self.client.generation() == generation {
                    // Still on the connection that holds the job, but its
                    // state is unknown: make sure the server has it back.
                    self.client.disconnect();
                }
                self.lost(id, "stats-job failed");
                return;
            }
        };
        let ttr = Duration::from_secs(stats.ttr.max(1));
        let every = touch_interval(ttr);
        let priority = stats.pri;

        let handler = Arc::clone(&self.handler);
        let delivered = WorkerJob::new(job, stats.clone());
        let task: JoinHandle<Result<Outcome, BoxError>> =
            tokio::spawn(async move { handler.handle(delivered).await });
        let (finished, lost) = self.supervise(id, task, reserved_at + every, every).await;

        let outcome = match finished {
            Finished::Cancelled => {
                crate::event!(
                    info,
                    slot = self.index,
                    job = id,
                    "handler cancelled at shutdown; releasing the job"
                );
                Outcome::release(Duration::ZERO)
            }
            Finished::Returned(Ok(Ok(outcome))) => outcome,
            Finished::Returned(Ok(Err(error))) => {
                self.counters.add_failed();
                crate::event!(warn, slot = self.index, job = id, %error, "handler failed");
                let _ = error;
                self.settings.failure.on_failure(&stats)
            }
            Finished::Returned(Err(error)) => {
                self.counters.add_failed();
                crate::event!(error, slot = self.index, job = id, %error, "handler panicked");
                let _ = error;
                self.settings.failure.on_failure(&stats)
            }
        };
        if lost {
            self.lost(id, "reservation lost while the handler ran");
            return;
        }
        self.settle(id, priority, outcome, &stats).await;
    }

    /// Waits for the handler, touching the job on schedule, and cancels the
    /// handler if shutdown's grace period runs out. Returns how it ended
    /// and whether the reservation was lost meanwhile.
    async fn supervise(
        &mut self,
        id: u64,
        mut task: JoinHandle<Result<Outcome, BoxError>>,
        mut next_touch: Instant,
        every: Duration,
    ) -> (Finished, bool) {
        let shutdown = self.shutdown.clone();
        let mut lost = false;
        let mut grace_ends: Option<Instant> = None;
        loop {
            let touching = self.settings.auto_touch && !lost;
            tokio::select! {
                joined = &mut task => return (Finished::Returned(joined), lost),
                () = sleep_until(next_touch), if touching => {
                    match self.client.touch(id).await {
                        Ok(()) => {
                            self.counters.add_touched();
                            crate::event!(trace, slot = self.index, job = id, "touched");
                            next_touch = Instant::now() + every;
                        }
                        Err(Error::Server(error)) => {
                            crate::event!(warn, slot = self.index, job = id, %error, "touch failed; retrying");
                            let _ = error;
                            next_touch = Instant::now() + TOUCH_RETRY.min(every);
                        }
                        Err(error) => {
                            // NOT_FOUND (the TTR ran out), a lost lease or a
                            // broken connection: the server has the job back.
                            crate::event!(warn, slot = self.index, job = id, %error, "reservation lost");
                            let _ = error;
                            lost = true;
                        }
                    }
                    self.count_reconnects();
                }
                () = shutdown.triggered(), if grace_ends.is_none() => {
                    grace_ends = Some(Instant::now() + self.settings.grace);
                }
                () = sleep_until(grace_ends.unwrap_or_else(Instant::now)), if grace_ends.is_some() => {
                    task.abort();
                    // Wait for the cancellation, so the handler is gone
                    // before its job is released (a panic is ignored here).
                    let _ = (&mut task).await;
                    return (Finished::Cancelled, lost);
                }
            }
        }
    }

    /// Deletes, releases or buries the job as `outcome` says.
    async fn settle(&mut self, id: u64, priority: u32, outcome: Outcome, stats: &JobStats) {
        let result =
            proto::worker::settle(&mut self.client, id, priority, outcome, &self.counters).await;
        self.count_reconnects();
        match result {
            Ok(()) => {
                crate::event!(
                    debug,
                    slot = self.index,
                    job = id,
                    ?outcome,
                    attempt = stats.reserves,
                    "settled"
                );
                let _ = stats;
            }
            Err(error) => {
                if proto::worker::should_disconnect_after_failed_settle(&error) {
                    self.client.disconnect();
                }
                crate::event!(warn, slot = self.index, job = id, %error, "settling failed");
                let _ = error;
                self.lost(id, "settling failed");
            }
        }
    }

    fn lost(&self, id: u64, why: &'static str) {
        self.counters.add_lost();
        crate::event!(
            warn,
            slot = self.index,
            job = id,
            why,
            "job handed back to the server"
        );
        let _ = (id, why);
    }
}
