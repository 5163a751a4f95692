//! A blocking beanstalkd client over `std::net` and Unix domain sockets.
//!
//! This crate only moves bytes: every command, reply and rule of the
//! protocol comes from [`proto`] (`beanstalk-proto`), the sans-IO core that
//! the tokio and async-std/smol adapters share. The 25 commands are methods
//! of [`Commands`], implemented for [`Client`].
//!
//! ```
//! # let server = beanstalk_test_support::Server::start();
//! # let address = server.url();
//! use beanstalk_blocking::{Client, Commands, Error, PutOptions};
//!
//! // `address` is like "127.0.0.1:11300", "beanstalk://host" or "unix:///run/b.sock";
//! // `Client::connect_default()` reads BEANSTALKD_URL instead.
//! let mut client = Client::connect(&address)?;
//! client.use_tube("thumbnails")?;
//! client.watch("thumbnails")?;
//! client.put(&b"image-42.png"[..], PutOptions::default().ttr(120))?;
//!
//! let job = client.reserve()?;
//! // ... do the work ...
//! client.delete(job.id)?;
//! assert!(matches!(client.peek(job.id), Ok(None)));
//! # Ok::<(), Error>(())
//! ```
//!
//! For long-running consumers, [`ReconnectingClient`] replaces broken
//! connections (restoring the tube and watch list, never re-sending a
//! command that may have taken effect), and [`Worker`] runs a pool of
//! threads that reserve, run your handler, touch, settle and shut down
//! gracefully (see [`worker`]).
//!
//! # Timeouts and failures
//! Each command waits at most the time the core says applies to it (see
//! [`Client`]), started again when it passes while the command's own bytes
//! still leave the kernel's send buffer, fewer than when it last passed
//! (Linux; on a Unix socket only while no command was written after it;
//! see `proto::reply_watch::own_unsent`). A timeout, an I/O
//! error or a protocol violation closes the connection for good, and
//! [`Error::outcome_unknown`] tells whether the command may have taken
//! effect (a `put` whose job may exist).
//!
//! Waits are never cut short. Long ones use the socket's own timeout
//! (`SO_RCVTIMEO`), which the kernel counts in scheduler ticks, so they may
//! run out a few milliseconds late; below 100 ms (on Unix) the client
//! waits with poll(2) first, which keeps a timeout within about a
//! millisecond, as the async adapters' timers do.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod client;
mod connect;
mod reconnecting;
mod stream;
pub mod worker;

pub use client::{Client, WithTimeout};
pub use proto::{
    self, CommandError, Commands, Config, Endpoint, Error, Execute, Job, JobId, JobStats, Options,
    ProtocolError, PutOptions, PutReceipt, ReleaseOutcome, ServerError, ServerStats, Tube,
    TubeList, TubeStats, cmd,
};
pub use reconnecting::ReconnectingClient;
pub use worker::{Handler, Outcome, Shutdown, Worker, WorkerBuilder, WorkerJob};
