//! A pool of workers on smol or async-std: reserve, run a handler, settle
//! the job; reconnect, touch and shut down gracefully along the way. The
//! slot loop is the core's ([`proto::worker::Slot`]), the same as tokio's.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

pub use proto::worker::{
    BoxError, CounterSnapshot, Counters, FailurePolicy, Handler, Outcome, Shutdown, WorkerJob,
};
use proto::worker::{FromWorkerSettings, HandlerOutput, Slot, WorkerRuntime, WorkerSettings};

use crate::client::Client;
use crate::runtime::{Runtime, Task};
use crate::stream::DefaultStream;

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
/// tubes, runs a [`Handler`] per job and settles the job. It behaves as
/// tokio's worker does, from the same core loop:
///
/// - **Settling:** `Ok` deletes the job (or does what the handler's
///   [`Outcome`] says); an error or a panic releases it with a backoff
///   delay by its `releases` count, or buries it once it has been reserved
///   [`FailurePolicy::max_attempts`] times.
/// - **Touching:** while the handler runs (on a task of its own), the job
///   is touched on its own connection every
///   [`proto::worker::touch_interval`] of its TTR.
/// - **Reconnecting:** a broken connection is replaced with backoff, the
///   watch list restored, and reserving goes on; a job held on the lost
///   connection is not touched or settled on the new one and counts as
///   `lost`.
/// - **Shutdown:** when the [`Shutdown`] is triggered, reserving stops at
///   once (a waiting reserve is cancelled by closing its connection, so the
///   server releases any job it was handing over); handlers in flight get
///   the grace period to finish and be settled; those still running are
///   cancelled and their jobs released.
///
/// Slots and handlers run on the runtime `run` is called from (see the
/// crate docs on choosing between smol and async-std).
///
/// ```
/// # smol::block_on(async {
/// # let server = beanstalk_test_support::Server::start();
/// # let address = server.url();
/// use beanstalk_async_std::worker::{Shutdown, Worker, WorkerJob};
/// use beanstalk_async_std::{AsyncCommands, Client, PutOptions};
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
/// let running = smol::spawn(worker.run(
///     |job: WorkerJob| async move {
///         // ... send the mail ...
///         Ok::<(), String>(())
///     },
///     shutdown.clone(),
/// ));
/// while counters.snapshot().succeeded < 10 {
///     smol::Timer::after(std::time::Duration::from_millis(10)).await;
/// }
/// shutdown.trigger();
/// let totals = running.await;
/// assert_eq!((totals.reserved, totals.succeeded), (10, 10));
/// # Ok::<(), beanstalk_async_std::Error>(())
/// # }).unwrap();
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
        let runtime = Runtime::current();
        let handler = Arc::new(handler);
        let slots: Vec<Task<()>> = (0..self.concurrency)
            .map(|index| {
                let slot = Slot::<Client<DefaultStream>, H>::new(
                    index,
                    Arc::clone(&self.settings),
                    Arc::clone(&handler),
                    Arc::clone(&self.counters),
                    shutdown.clone(),
                );
                runtime.spawn_task(slot.run())
            })
            .collect();
        for slot in slots {
            slot.await;
        }
        self.counters.snapshot()
    }
}

/// A handler's task on smol or async-std.
#[derive(Debug)]
pub struct HandlerTask(Task<HandlerOutput>);

impl Future for HandlerTask {
    type Output = Option<HandlerOutput>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // The slot catches a handler's panic itself, so the task always
        // yields the handler's output.
        Pin::new(&mut self.0).poll(cx).map(Some)
    }
}

impl WorkerRuntime for Client<DefaultStream> {
    type Task = HandlerTask;

    fn spawn(handler: impl Future<Output = HandlerOutput> + Send + 'static) -> HandlerTask {
        HandlerTask(Runtime::current().spawn_task(handler))
    }

    async fn cancel(task: HandlerTask) {
        task.0.cancel().await;
    }
}
