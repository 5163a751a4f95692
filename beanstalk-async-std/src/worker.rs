//! A pool of workers on smol or async-std: reserve, run a handler, settle
//! the job; reconnect, touch and shut down gracefully along the way. The
//! pool and its slot loop are the core's ([`proto::worker::Pool`]), the
//! same as tokio's; this module runs them on the runtime's tasks.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

pub use proto::worker::{
    BoxError, CounterSnapshot, Counters, FailurePolicy, Handler, Outcome, Shutdown, WorkerJob,
};
use proto::worker::{HandlerOutput, SlotFuture, WorkerRuntime};

use crate::client::Client;
use crate::runtime::{Runtime, Task};
use crate::stream::DefaultStream;

/// Configures a [`Worker`]; from [`Worker::builder`]. The options and their
/// defaults are the core's, the same in every adapter.
pub type WorkerBuilder = proto::worker::WorkerBuilder<Worker>;

/// A pool of job slots on smol or async-std tasks (the runtime `run` is
/// called from), each with its own connection: reserves from a set of
/// tubes, runs a [`Handler`] per job (on a task of its own) and settles the
/// job. What it does on failures, long jobs, broken connections and
/// shutdown is described on the core's [`Pool`](proto::worker::Pool), the
/// same as tokio's worker.
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
pub type Worker = proto::worker::Pool<Client<DefaultStream>>;

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

/// A worker slot's task on smol or async-std.
#[derive(Debug)]
pub struct SlotTask(Task<()>);

impl Future for SlotTask {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl WorkerRuntime for Client<DefaultStream> {
    type Task = HandlerTask;
    type SlotTask = SlotTask;

    fn spawn_slot(slot: SlotFuture) -> SlotTask {
        SlotTask(Runtime::current().spawn_task(slot))
    }

    fn spawn(handler: impl Future<Output = HandlerOutput> + Send + 'static) -> HandlerTask {
        HandlerTask(Runtime::current().spawn_task(handler))
    }

    async fn cancel(task: HandlerTask) {
        task.0.cancel().await;
    }
}
