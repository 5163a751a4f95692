//! The worker pool on threads: the same behaviour as the tokio adapter's
//! worker, from the same core policy ([`proto::worker`], [`proto::retry`],
//! [`proto::lease`]).

use std::collections::HashMap;
use std::error::Error as StdError;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use proto::api::{Blocking, now_or_never};
use proto::retry::ReconnectPolicy;
pub use proto::worker::{CounterSnapshot, Counters, FailurePolicy, Outcome, WorkerJob};
use proto::worker::{
    FromWorkerSettings, WorkerSettings, job_ttr, settle, should_disconnect_after_failed_settle,
    subscribe, touch_interval,
};
use proto::{Commands, Error, Job, ProtocolError, cmd};

use crate::client::Closer;
use crate::reconnecting::ReconnectingClient;

/// The error a handler may return: anything that converts into a boxed
/// error (`String`, `&str`, any `std::error::Error`).
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// How often a slot waiting for its handler checks for shutdown.
const POLL: Duration = Duration::from_millis(20);

/// The pause after the server refused a `watch` or answered a `reserve`
/// unexpectedly.
const SERVER_ERROR_PAUSE: Duration = Duration::from_millis(200);

/// A shutdown signal for a [`Worker`]: cloneable, triggered once.
///
/// Triggering it closes the connections of slots waiting in `reserve` at
/// once (the server releases any job it was handing over), lets handlers
/// in flight finish within the grace period, and releases the jobs of
/// those still running after it.
///
/// ```
/// use beanstalk_blocking::worker::Shutdown;
/// use std::time::Duration;
///
/// let shutdown = Shutdown::new();
/// let waiter = shutdown.clone();
/// let thread = std::thread::spawn(move || waiter.wait_timeout(Duration::from_secs(10)));
/// shutdown.trigger();
/// assert!(thread.join().unwrap());
/// ```
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    inner: Arc<ShutdownInner>,
}

#[derive(Debug, Default)]
struct ShutdownInner {
    state: Mutex<ShutdownState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct ShutdownState {
    triggered: bool,
    /// Connections with a reserve waiting, by slot.
    waiting: HashMap<usize, Closer>,
}

impl Shutdown {
    /// A signal not yet triggered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Triggers the signal; every clone sees it.
    pub fn trigger(&self) {
        let mut state = self.lock();
        state.triggered = true;
        for (_, closer) in state.waiting.drain() {
            closer.close();
        }
        self.inner.changed.notify_all();
    }

    /// Whether the signal was triggered.
    pub fn is_triggered(&self) -> bool {
        self.lock().triggered
    }

    /// Blocks until the signal is triggered.
    pub fn wait(&self) {
        let mut state = self.lock();
        while !state.triggered {
            state = self
                .inner
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Blocks until the signal is triggered or `timeout` passes; returns
    /// whether it was triggered.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        // Past what the clock can hold (`Duration::MAX`): wait without end.
        let deadline = Instant::now().checked_add(timeout);
        let mut state = self.lock();
        while !state.triggered {
            let left = deadline.map_or(Duration::MAX, |at| {
                at.saturating_duration_since(Instant::now())
            });
            if left.is_zero() {
                break;
            }
            state = self
                .inner
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        state.triggered
    }

    /// Registers the connection a slot is about to reserve on; false if
    /// the signal was already triggered (then the slot must not reserve).
    fn reserving(&self, slot: usize, closer: Closer) -> bool {
        let mut state = self.lock();
        if state.triggered {
            return false;
        }
        state.waiting.insert(slot, closer);
        true
    }

    fn reserved(&self, slot: usize) {
        self.lock().waiting.remove(&slot);
    }

    fn lock(&self) -> MutexGuard<'_, ShutdownState> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// What a [`Worker`] runs for each job, on a thread of its own.
///
/// `Ok(outcome)` settles the job as asked; an error or a panic is a failed
/// try, settled by the [`FailurePolicy`]. Implemented for every
/// `Fn(WorkerJob) -> Result<T, E>` where `T` converts into an [`Outcome`]
/// (`()` means delete) and `E` into a [`BoxError`].
pub trait Handler: Send + Sync + 'static {
    /// Handles one job.
    fn handle(&self, job: WorkerJob) -> Result<Outcome, BoxError>;
}

impl<F, T, E> Handler for F
where
    F: Fn(WorkerJob) -> Result<T, E> + Send + Sync + 'static,
    T: Into<Outcome>,
    E: Into<BoxError>,
{
    fn handle(&self, job: WorkerJob) -> Result<Outcome, BoxError> {
        self(job).map(Into::into).map_err(Into::into)
    }
}

/// The settings every slot shares.
type Settings = WorkerSettings;

/// Configures a [`Worker`]; from [`Worker::builder`]. The options and their
/// defaults are the core's, the same in every adapter.
pub type WorkerBuilder = proto::worker::WorkerBuilder<Worker>;

impl FromWorkerSettings for Worker {
    fn from_settings(settings: WorkerSettings) -> Self {
        Self {
            concurrency: settings.concurrency,
            settings: Arc::new(settings),
            counters: Arc::new(Counters::default()),
        }
    }
}

/// A pool of job slots on threads, each with its own connection: the
/// blocking twin of the tokio adapter's worker.
///
/// Each slot reserves from the worker's tubes, runs the [`Handler`] on a
/// thread of its own while it touches the job on schedule
/// ([`proto::worker::touch_interval`]), and settles the job: delete on
/// success, release with backoff or bury per the [`FailurePolicy`] on
/// failure, or what the handler's [`Outcome`] says. Broken connections are
/// replaced with backoff and the watch list restored; a job held on a lost
/// connection is never settled on the new one. [`Shutdown`] stops
/// reserving at once, waits up to the grace period for handlers in flight,
/// then releases the jobs of those still running.
///
/// ```
/// # let server = beanstalk_test_support::Server::start();
/// # let address = server.url();
/// use beanstalk_blocking::worker::{Shutdown, Worker, WorkerJob};
/// use beanstalk_blocking::{Client, Commands, PutOptions};
///
/// let mut producer = Client::connect(&address)?;
/// for i in 0..10 {
///     producer.put(format!("job {i}"), PutOptions::default())?;
/// }
/// let worker = Worker::builder(&address).concurrency(3).build()?;
/// let counters = worker.counters();
/// let shutdown = Shutdown::new();
/// let running = std::thread::spawn({
///     let shutdown = shutdown.clone();
///     move || worker.run(|_job: WorkerJob| Ok::<(), String>(()), &shutdown)
/// });
/// while counters.snapshot().succeeded < 10 {
///     std::thread::sleep(std::time::Duration::from_millis(5));
/// }
/// shutdown.trigger();
/// assert_eq!(running.join().unwrap().succeeded, 10);
/// # Ok::<(), beanstalk_blocking::Error>(())
/// ```
#[derive(Debug)]
pub struct Worker {
    settings: Arc<Settings>,
    concurrency: usize,
    counters: Arc<Counters>,
}

impl Worker {
    /// A worker for the server at `address`.
    pub fn builder(address: &str) -> WorkerBuilder {
        WorkerBuilder::new(address)
    }

    /// The worker's counters; read them at any time.
    pub fn counters(&self) -> Arc<Counters> {
        Arc::clone(&self.counters)
    }

    /// Runs on the calling thread (and one thread per slot) until
    /// `shutdown` is triggered and every slot has wound down; returns the
    /// final counts.
    pub fn run<H: Handler>(self, handler: H, shutdown: &Shutdown) -> CounterSnapshot {
        let handler = Arc::new(handler);
        thread::scope(|scope| {
            for index in 0..self.concurrency {
                let mut slot = Slot::new(
                    index,
                    Arc::clone(&self.settings),
                    Arc::clone(&handler),
                    Arc::clone(&self.counters),
                    shutdown.clone(),
                );
                let spawned = thread::Builder::new()
                    .name(format!("beanstalk-worker-{index}"))
                    .spawn_scoped(scope, move || slot.run());
                if spawned.is_err() {
                    // No thread for this slot: run with the others.
                    continue;
                }
            }
        });
        self.counters.snapshot()
    }
}

struct Slot<H> {
    index: usize,
    settings: Arc<Settings>,
    handler: Arc<H>,
    counters: Arc<Counters>,
    shutdown: Shutdown,
    client: ReconnectingClient,
    reconnects_counted: u64,
}

/// Whether a failed reserve got a reply it should not have (garbage, one
/// past this worker's limits) rather than lost its connection: the server
/// closing it (`UnexpectedEof`: a restart, a proxy, an idle timeout) is a
/// lost connection, replaced at once (the client backs off between
/// attempts).
fn is_bad_reply(error: &Error) -> bool {
    matches!(
        error,
        Error::Protocol(cause)
            if !matches!(cause, ProtocolError::UnexpectedEof { .. })
    )
}

impl<H: Handler> Slot<H> {
    fn new(
        index: usize,
        settings: Arc<Settings>,
        handler: Arc<H>,
        counters: Arc<Counters>,
        shutdown: Shutdown,
    ) -> Self {
        let policy = ReconnectPolicy::default()
            .backoff(settings.reconnect)
            .max_attempts(None);
        let mut client =
            ReconnectingClient::lazy(settings.endpoint.clone(), settings.options, policy);
        client.interrupt_with(shutdown.clone());
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

    fn run(&mut self) {
        // Lost connections are replaced inside `watch` (until the
        // shutdown); what else comes out is the server's refusal
        // (`OUT_OF_MEMORY`, `INTERNAL_ERROR`), which passes: a slot that
        // stopped there would leave the worker short of it, for ever.
        while self.watch().is_err() {
            if self.shutdown.is_triggered() {
                return;
            }
            self.shutdown.wait_timeout(SERVER_ERROR_PAUSE);
        }
        while !self.shutdown.is_triggered() {
            match self.client.ensure_connected() {
                Ok(()) => {}
                Err(error) if error.is_connection_error() => continue, // interrupted by shutdown
                // A caller's error (a zero timeout): no attempt will do better,
                // and retrying at once would spin.
                Err(_) => break,
            }
            let Some(closer) = self.client.closer() else {
                self.client.disconnect();
                continue;
            };
            if !self.shutdown.reserving(self.index, closer) {
                break;
            }
            // Only on the connection just registered, and not re-sent: a
            // new connection (the idle one was found closed, or broke)
            // must be registered for shutdown first, which the next turn
            // does.
            let reserved = self.client.run(cmd::Reserve, false);
            self.shutdown.reserved(self.index);
            self.count_reconnects();
            match reserved {
                Ok(_) if self.shutdown.is_triggered() => {
                    // Reserved as shutdown began: closing the connection
                    // hands it back as it was, priority included, as a
                    // cancelled reserve does on the async workers.
                    self.client.disconnect();
                }
                Ok(job) => self.process(job),
                Err(Error::JobTooLarge { id, .. }) => self.bury_too_large(id),
                // A lost connection is replaced at once: the client backs
                // off between attempts. A reply the server should not have
                // sent, or one past this worker's limits (a YAML body),
                // pauses below like any other reserve error.
                Err(error) if error.is_connection_error() && !is_bad_reply(&error) => {}
                Err(error) => {
                    if let Error::DeadlineSoon = error {
                        // A job in its last second on this connection, one
                        // whose settling failed: closing it makes the
                        // server release the job now.
                        self.client.disconnect();
                    }
                    // A server that keeps answering so is not polled in a
                    // tight loop.
                    self.shutdown.wait_timeout(SERVER_ERROR_PAUSE);
                }
            }
        }
        if self.client.is_connected() {
            let _ = self.client.quit();
        }
        self.count_reconnects();
    }

    fn watch(&mut self) -> Result<(), Error> {
        let subscribed = now_or_never(subscribe(
            &mut Blocking(&mut self.client),
            &self.settings.tubes,
        ));
        subscribed.unwrap_or(Err(Error::Protocol(ProtocolError::Abandoned)))
    }

    fn count_reconnects(&mut self) {
        let total = self.client.reconnects();
        self.counters
            .add_reconnects_since(&mut self.reconnects_counted, total);
    }

    fn process(&mut self, job: Job) {
        let reserved_at = Instant::now();
        let id = job.id;
        let generation = self.client.generation();
        self.counters.add_reserved();
        let stats = match self.client.stats_job(id) {
            Ok(stats) if self.client.generation() == generation => stats,
            _ => {
                if self.client.generation() == generation {
                    self.client.disconnect();
                }
                self.counters.add_lost();
                return;
            }
        };
        let every = touch_interval(job_ttr(stats.ttr));
        let priority = stats.pri;

        let (sender, results) = mpsc::channel();
        let handler = Arc::clone(&self.handler);
        let delivered = WorkerJob::new(job, stats.clone());
        let spawned = thread::Builder::new()
            .name(format!("beanstalk-job-{id}"))
            .spawn(move || {
                let result = catch_unwind(AssertUnwindSafe(|| handler.handle(delivered)));
                let _ = sender.send(result.unwrap_or_else(|_| Err("the handler panicked".into())));
            });
        if spawned.is_err() {
            self.counters.add_failed();
            self.settle(id, priority, self.settings.failure.on_failure(&stats));
            return;
        }

        let mut next_touch = reserved_at + every;
        let mut stopping = false;
        // `None` while not stopping, and for a grace without end
        // (`Duration::MAX`, past what the clock can hold).
        let mut grace_ends: Option<Instant> = None;
        let mut lost = false;
        let finished = loop {
            let now = Instant::now();
            if !stopping && self.shutdown.is_triggered() {
                stopping = true;
                grace_ends = now.checked_add(self.settings.grace);
            }
            if grace_ends.is_some_and(|end| now >= end) {
                break None;
            }
            if self.settings.auto_touch && !lost && now >= next_touch {
                match self.client.touch(id) {
                    Ok(()) => {
                        self.counters.add_touched();
                        next_touch = Instant::now() + every;
                    }
                    Err(Error::Server(_)) => next_touch = Instant::now() + every.min(POLL * 10),
                    Err(_) => lost = true,
                }
                self.count_reconnects();
                continue;
            }
            let mut wait = POLL;
            if self.settings.auto_touch && !lost {
                wait = wait.min(next_touch.saturating_duration_since(now));
            }
            match results.recv_timeout(wait) {
                Ok(result) => break Some(result),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    break Some(Err("the handler thread died".into()));
                }
            }
        };
        let outcome = match finished {
            // Still running after the grace period: it is left to finish on
            // its own; its job goes back now.
            None => Outcome::release(Duration::ZERO),
            Some(Ok(outcome)) => outcome,
            Some(Err(_)) => {
                self.counters.add_failed();
                self.settings.failure.on_failure(&stats)
            }
        };
        if lost {
            self.counters.add_lost();
            return;
        }
        self.settle(id, priority, outcome);
    }

    /// A job past the worker's `max_job_size` was reserved (its body read
    /// and dropped): it is buried with its own priority, as in the async
    /// workers, rather than handed back to be reserved again ahead of
    /// every job behind it.
    fn bury_too_large(&mut self, id: u64) {
        let generation = self.client.generation();
        self.counters.add_reserved();
        match self.client.stats_job(id) {
            Ok(stats) if self.client.generation() == generation => {
                self.settle(id, stats.pri, Outcome::Bury);
            }
            _ => {
                if self.client.generation() == generation {
                    self.client.disconnect();
                }
                self.counters.add_lost();
            }
        }
    }

    fn settle(&mut self, id: u64, priority: u32, outcome: Outcome) {
        let settled = now_or_never(settle(
            &mut Blocking(&mut self.client),
            id,
            priority,
            outcome,
            &self.counters,
        ));
        // Every step of a `Blocking` client completes at once.
        let result = settled.unwrap_or(Err(Error::Protocol(ProtocolError::Abandoned)));
        self.count_reconnects();
        if let Err(error) = result {
            if should_disconnect_after_failed_settle(&error) {
                self.client.disconnect();
            }
            self.counters.add_lost();
        }
    }
}
