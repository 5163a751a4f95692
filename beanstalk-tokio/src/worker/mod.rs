//! A pool of workers: reserve, run a handler, settle the job; reconnect,
//! touch and shut down gracefully along the way. The pool and its slot
//! loop are the core's ([`proto::worker::Pool`]); this module runs them on
//! tokio tasks.

mod runtime;

pub use proto::worker::{
    BoxError, CounterSnapshot, Counters, FailurePolicy, Handler, Outcome, Shutdown, WorkerJob,
};
pub use runtime::{HandlerTask, SlotTask};

use crate::client::Client;

/// Configures a [`Worker`]; from [`Worker::builder`]. The options and their
/// defaults are the core's, the same in every adapter.
pub type WorkerBuilder = proto::worker::WorkerBuilder<Worker>;

/// A pool of job slots on tokio tasks, each with its own connection:
/// reserves from a set of tubes, runs a [`Handler`] per job (on a task of
/// its own) and settles the job. What it does on failures, long jobs,
/// broken connections and shutdown is described on the core's
/// [`Pool`](proto::worker::Pool), which this is over tokio's [`Client`].
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
pub type Worker = proto::worker::Pool<Client>;
