//! The async adapters' worker: a pool of [`Slot`]s, written once over the
//! adapter's connection type.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::future::Future;
use core::marker::PhantomData;
use core::pin::Pin;

use super::runtime::{Handler, WorkerRuntime};
use super::slot::Slot;
use super::{
    CounterSnapshot, Counters, FromWorkerSettings, Shutdown, WorkerBuilder, WorkerSettings,
};

/// A slot's future, boxed so that every runtime can spawn it by one type.
pub type SlotFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A pool of job slots, each with its own connection `C`: reserves from a
/// set of tubes, runs a [`Handler`] per job and settles the job. Each async
/// adapter exports it over its `Client` as `worker::Worker`, with examples.
///
/// - **Settling:** `Ok` deletes the job (or does what the handler's
///   [`super::Outcome`] says); an error or a panic releases it with a
///   backoff delay by its `releases` count, or buries it once it has been
///   reserved [`super::FailurePolicy::max_attempts`] times.
/// - **Touching:** while the handler runs, on a task of its own, the job is
///   touched on its own connection (where no reserve is waiting) every
///   [`super::touch_interval`] of its TTR, so a long job is not given to
///   another worker. `DEADLINE_SOON` cannot reach a waiting reserve,
///   because a slot never reserves while it holds a job; should a reserve
///   get it anyway (a job left unsettled), the slot drops its connection so
///   the server releases that job at once.
/// - **Reconnecting:** a broken connection is replaced with backoff, the
///   watch list restored, and reserving goes on; a job held on the lost
///   connection is not touched or settled on the new one (the server has
///   already released it) and counts as `lost`.
/// - **Shutdown:** when the [`Shutdown`] is triggered, reserving stops at
///   once (a waiting reserve is cancelled by closing its connection, so the
///   server releases any job it was handing over); handlers in flight get
///   the grace period to finish and be settled; those still running are
///   cancelled and their jobs released.
/// - **Observability:** [`Pool::counters`] can be read at any time; what
///   each slot does goes to [`WorkerRuntime::observe_worker`] (tokio's
///   `tracing` feature turns it into events).
pub struct Pool<C> {
    settings: Arc<WorkerSettings>,
    counters: Arc<Counters>,
    connection: PhantomData<fn() -> C>,
}

impl<C> FromWorkerSettings for Pool<C> {
    fn from_settings(settings: WorkerSettings) -> Self {
        Self {
            settings: Arc::new(settings),
            counters: Arc::new(Counters::default()),
            connection: PhantomData,
        }
    }
}

impl<C> fmt::Debug for Pool<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("settings", &self.settings)
            .field("counters", &self.counters.snapshot())
            .finish()
    }
}

impl<C: WorkerRuntime> Pool<C> {
    /// A worker for the server at `address` (any form
    /// [`Endpoint`](crate::Endpoint) parses).
    pub fn builder(address: &str) -> WorkerBuilder<Self> {
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
        let slots: Vec<C::SlotTask> = (0..self.settings.concurrency)
            .map(|index| {
                let slot = Slot::<C, H>::new(
                    index,
                    Arc::clone(&self.settings),
                    Arc::clone(&handler),
                    Arc::clone(&self.counters),
                    shutdown.clone(),
                );
                C::spawn_slot(Box::pin(slot.run()))
            })
            .collect();
        for slot in slots {
            slot.await;
        }
        self.counters.snapshot()
    }
}
