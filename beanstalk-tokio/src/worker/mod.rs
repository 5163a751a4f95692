//! A pool of workers: reserve, run a handler, settle the job; reconnect,
//! touch and shut down gracefully along the way.

mod runtime;

use std::sync::Arc;

pub use proto::worker::{
    BoxError, CounterSnapshot, Counters, FailurePolicy, Handler, Outcome, Shutdown, WorkerJob,
};
use proto::worker::{FromWorkerSettings, Slot, WorkerSettings};
use tokio::task::JoinSet;

use crate::client::Client;

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

/// A pool of job slots, each with its own connection: reserves from a set of
/// tubes, runs a [`Handler`] per job and settles the job.
///
/// - **Settling:** `Ok` deletes the job (or does what the handler's
///   [`Outcome`] says); an error or a panic releases it with a backoff
///   delay by its `releases` count, or buries it once it has been reserved
///   [`FailurePolicy::max_attempts`] times.
/// - **Touching:** while the handler runs, the job is touched on its own
///   connection (where no reserve is waiting) every
///   [`proto::worker::touch_interval`] of its TTR, so a long job is not
///   given to another worker. `DEADLINE_SOON` cannot reach a waiting
///   reserve, because a slot never reserves while it holds a job; should a
///   reserve get it anyway (a job left unsettled), the slot drops its
///   connection so the server releases that job at once.
/// - **Reconnecting:** a broken connection is replaced with backoff, the
///   watch list restored, and reserving goes on; a job held on the lost
///   connection is not touched or settled on the new one (the server has
///   already released it) and counts as `lost`.
/// - **Shutdown:** when the [`Shutdown`] is triggered, reserving stops at
///   once (a waiting reserve is cancelled by closing its connection, so the
///   server releases any job it was handing over); handlers in flight get
///   the grace period to finish and be settled; those still running are
///   cancelled and their jobs released.
/// - **Observability:** [`Worker::counters`] can be read at any time; with
///   the `tracing` feature, events are emitted for each step.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), beanstalk_tokio::Error> {
/// # let server = beanstalk_test_support::Server::start();
/// # let address = server.url();
/// use beanstalk_tokio::worker::{Shutdown, Worker, WorkerJob};
/// use beanstalk_tokio::{AsyncCommands, Client, PutOptions};
///
/// let mut producer = Client::connect(&address).await?;
/// producer.use_tube("emails").await?;
/// for i in 0..10 {
///     producer.put(format!("mail {i}"), PutOptions::default()).await?;
/// }
///
/// let worker = Worker::builder(&address).tube("emails").concurrency(4).build()?;
/// let counters = worker.counters();
/// let shutdown = Shutdown::new();
/// let running = tokio::spawn(worker.run(
///     |job: WorkerJob| async move {
///         // ... send the mail ...
///         Ok::<(), String>(())
///     },
///     shutdown.clone(),
/// ));
/// while counters.snapshot().succeeded < 10 {
///     tokio::time::sleep(std::time::Duration::from_millis(10)).await;
/// }
/// shutdown.trigger();
/// let totals = running.await.unwrap();
/// assert_eq!((totals.reserved, totals.succeeded), (10, 10));
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Worker {
    settings: Arc<WorkerSettings>,
    concurrency: usize,
    counters: Arc<Counters>,
}

impl Worker {
    /// A worker for the server at `address` (see [`crate::Client::connect`]
    /// for the forms it takes).
    pub fn builder(address: &str) -> WorkerBuilder {
        WorkerBuilder::new(address)
    }

    /// The worker's counters; read them at any time, also while it runs.
    pub fn counters(&self) -> Arc<Counters> {
        Arc::clone(&self.counters)
    }

    /// Runs until `shutdown` is triggered and every slot has wound down;
    /// returns the final counts.
    pub async fn run<H: Handler>(self, handler: H, shutdown: Shutdown) -> CounterSnapshot {
        let handler = Arc::new(handler);
        let mut slots = JoinSet::new();
        for index in 0..self.concurrency {
            let slot = Slot::<Client, H>::new(
                index,
                Arc::clone(&self.settings),
                Arc::clone(&handler),
                Arc::clone(&self.counters),
                shutdown.clone(),
            );
            slots.spawn(slot.run());
        }
        crate::event!(info, slots = self.concurrency, "worker started");
        while let Some(ended) = slots.join_next().await {
            if let Err(error) = ended {
                crate::event!(error, %error, "worker slot ended abnormally");
                let _ = error;
            }
        }
        let totals = self.counters.snapshot();
        crate::event!(info, ?totals, "worker stopped");
        totals
    }
}
