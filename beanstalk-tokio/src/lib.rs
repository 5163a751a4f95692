//! An async beanstalkd client for tokio, over TCP and Unix sockets.
//!
//! This crate only moves bytes: every command, reply and rule of the
//! protocol comes from [`proto`] (`beanstalk-proto`), the sans-IO core
//! shared with the blocking and async-std/smol adapters. The 25 commands are
//! the methods of [`AsyncCommands`], implemented for both clients:
//!
//! - [`Client`]: a connection owned by one task. Use it for workers: it can
//!   `reserve` and hold jobs. [`Client::execute_many`] pipelines a batch.
//! - [`SharedClient`]: a cloneable handle many tasks use at once; their
//!   commands are pipelined on one connection. Use it for producers. It
//!   refuses waiting reserves, which would stall every task (see its docs).
//! - [`ReconnectingClient`]: a [`Client`] that replaces a broken
//!   connection (bounded exponential backoff, tube and watch list
//!   restored), never re-sends a command that may have taken effect, and
//!   refuses to act on jobs reserved on a lost connection.
//! - [`Worker`]: a pool that reserves from a set of tubes, runs your
//!   handler, settles each job, touches long ones, reconnects, and shuts
//!   down gracefully (see [`worker`]).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), beanstalk_tokio::Error> {
//! # let server = beanstalk_test_support::Server::start();
//! # let address = server.url();
//! use beanstalk_tokio::{AsyncCommands, Client, PutOptions, SharedClient};
//!
//! // Producers share one connection.
//! let producer = SharedClient::connect(&address).await?;
//! let mut handle = producer.clone();
//! handle.use_tube("thumbnails").await?;
//! handle.put(&b"image-42.png"[..], PutOptions::default().ttr(120)).await?;
//!
//! // A worker owns its connection.
//! let mut worker = Client::connect(&address).await?;
//! worker.watch("thumbnails").await?;
//! let job = worker.reserve().await?;
//! // ... do the work ...
//! worker.delete(job.id).await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Features
//! - `tracing`: the reconnecting client and the worker emit `tracing`
//!   events (reconnects, reservations, settles, failures, shutdown).
//!
//! # Timeouts and failures
//! Each command waits at most the time the core says applies to it: the
//! read timeout of [`Options`] (default 5 s) for commands answered at once,
//! none for `reserve`, and the server-side timeout plus the read timeout
//! for `reserve-with-timeout`, started again when it passes while the
//! command's own bytes still leave the kernel's send buffer, fewer than
//! when it last passed (Linux; on a Unix socket only while no command was
//! written after it; see `proto::reply_watch::own_unsent`). A
//! [`SharedClient`]'s `with_timeout` is the exception: it bounds the whole
//! call, sending included.
//! A timeout, an I/O error or a protocol
//! violation closes the connection for good, and [`Error::outcome_unknown`]
//! tells whether the command may have taken effect.
#![cfg_attr(docsrs, feature(doc_cfg))]

/// Emits a `tracing` event with the `tracing` feature; nothing without it.
macro_rules! event {
    ($level:ident, $($arg:tt)+) => {
        #[cfg(feature = "tracing")]
        {
            tracing::$level!($($arg)+);
        }
    };
}
pub(crate) use event;

mod client;
mod reconnecting;
mod shared;
mod stream;
mod watchdog;
pub mod worker;

pub use client::{Client, WithTimeout};
pub use proto::{
    self, AsyncCommands, CommandError, Config, Endpoint, Error, Job, JobId, JobStats, Options,
    ProtocolError, PutOptions, PutReceipt, ReleaseOutcome, ServerError, ServerStats, Tube,
    TubeList, TubeStats, cmd,
};
pub use reconnecting::ReconnectingClient;
pub use shared::{SharedClient, SharedWithTimeout};
pub use worker::{Handler, Outcome, Shutdown, Worker, WorkerBuilder, WorkerJob};
