//! An async beanstalkd client for smol and async-std, over any `futures-io`
//! stream: TCP, Unix sockets, or one the caller brings (TLS).
//!
//! # Architecture
//! This crate only moves bytes: every command, reply and rule of the
//! protocol comes from [`proto`] (`beanstalk-proto`), the sans-IO core
//! shared with the blocking and tokio adapters. What lives here is the I/O
//! around it: reading and writing a `futures_io::AsyncRead + AsyncWrite`
//! stream, timeouts on the async-io timer, cancellation and connection
//! handling. The 25 commands are the methods of [`AsyncCommands`],
//! implemented for both clients:
//!
//! - [`Client`]: a connection owned by one task. Use it for workers: it can
//!   `reserve` and hold jobs. [`Client::execute_many`] pipelines a batch.
//! - [`SharedClient`]: a cloneable handle many tasks use at once; their
//!   commands are pipelined on one connection by a driver future. Use it for
//!   producers. It refuses waiting reserves, which would stall every task
//!   (see its docs).
//! - [`ReconnectingClient`] and [`Worker`] (with a runtime feature): a
//!   client that replaces its connection when it breaks, and a pool of
//!   worker slots that reserve, run your handler, touch and settle jobs and
//!   shut down gracefully; the same as tokio's, from the same core code.
//!
//! ```
//! # #[cfg(any(feature = "smol", feature = "async-std"))] // uses the connect helpers
//! # smol::block_on(async {
//! # let server = beanstalk_test_support::Server::start();
//! # let address = server.url();
//! use beanstalk_async_std::{AsyncCommands, Client, PutOptions, SharedClient};
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
//! # Ok::<(), beanstalk_async_std::Error>(())
//! # }).unwrap();
//! ```
//!
//! # Runtimes
//! The clients themselves need no runtime feature: they poll the stream
//! they are given and time out with `async_io::Timer`, which works under
//! any executor. The features only add the connect helpers (`connect`,
//! `connect_default`, `connect_with`, `connect_endpoint`, `reconnect`) and
//! the spawning of [`SharedClient`]'s driver:
//!
//! | feature | sockets | `SharedClient` driver spawned with |
//! |---|---|---|
//! | `smol` | `smol::net` (async-net) | `smol::spawn` |
//! | `async-std` | `async_std::net`, `async_std::os::unix::net` | `async_std::task::spawn` |
//!
//! Both are on by default. With both, the runtime is picked per call:
//! inside an async-std task (under `async_std::task::block_on` or `spawn`)
//! async-std's sockets and spawner are used, anywhere else smol's. Both
//! runtimes run their sockets on the same async-io reactor, so a client
//! made under one works under the other. An application that uses one
//! runtime turns the other off:
//!
//! ```toml
//! beanstalk-async-std = { version = "0.1", default-features = false, features = ["smol"] }
//! ```
//!
//! Without either feature the crate is the custom-stream core:
//! [`Client::from_stream`] and [`SharedClient::with_driver`].
//!
//! # Bringing your own stream
//! Any `futures_io::AsyncRead + AsyncWrite + Unpin + Send` stream can
//! carry a client: a TLS stream, a SOCKS tunnel, an in-memory pipe in
//! tests. [`Client`] is generic over it (`Client<S = DefaultStream>`);
//! after a failure, [`Client::reconnect_with`] restores the session on a
//! new stream the caller opened. The client flushes the stream after every
//! write, so buffering streams such as TLS send at once.
//!
//! Such a stream is not known to be a socket, so nothing is asked of the
//! kernel about it: no receive mark, and no count of the bytes still
//! leaving its send buffer. A reply's read timeout then does not start
//! again while a command's bytes drain after the write (a
//! [`SharedClient`]'s still does while its driver is writing them), so
//! through a slow link a large put needs a read timeout that covers its
//! transfer: a 4 MiB put through a 1.6 MB/s link under a 1 s read timeout
//! goes through a client of the connect helpers in 2.7 s, and fails after
//! 1.0 s on [`Client::from_stream`] over the same kind of socket.
//!
//! ```
//! # #[cfg(any(feature = "smol", feature = "async-std"))] // uses the connect helpers
//! # smol::block_on(async {
//! # let server = beanstalk_test_support::Server::start();
//! # let address = server.tcp_addr();
//! use beanstalk_async_std::{AsyncCommands, Client, Options, PutOptions, SharedClient};
//!
//! // Wrap the socket in TLS (or anything else) here.
//! let stream = smol::net::TcpStream::connect(address).await?;
//! let mut client = Client::from_stream(stream, Options::default());
//! let id = client.put("over my own stream", PutOptions::default()).await?.id;
//!
//! // The same for a shared handle; its driver is spawned on the runtime.
//! let stream = smol::net::TcpStream::connect(address).await?;
//! let mut shared = SharedClient::from_stream(stream, Options::default());
//! assert!(shared.peek(id).await?.is_some());
//! # Ok::<(), beanstalk_async_std::Error>(())
//! # }).unwrap();
//! ```
//!
//! # Timeouts and failures
//! Each command waits at most the time the core says applies to it
//! ([`Options::reply_deadline`]): the read timeout of [`Options`] (default
//! 5 s) for commands answered at once, none for `reserve`, and the
//! server-side timeout plus the read timeout for `reserve-with-timeout`;
//! `with_timeout` overrides it for one call. It starts again when it
//! passes while the command's own bytes still leave the kernel's send
//! buffer, fewer than when it last passed (Linux; on a Unix socket only
//! while no command was written after it; see
//! `proto::reply_watch::own_unsent`); not for a stream you brought
//! (above), nor under a [`SharedClient`]'s `with_timeout`, which bounds
//! the whole call. A timeout, an I/O error or a
//! protocol violation closes the connection for good, and
//! [`Error::outcome_unknown`] tells whether the command may have taken
//! effect.
//!
//! # Cancellation
//! Dropping a command's future never desynchronises the connection: its
//! reply is read and discarded in order by the next call. A dropped
//! *waiting* reserve closes the connection instead (beanstalkd answers
//! nothing else while it waits), and the server releases the job it may
//! have handed over. See [`Client`].
// docs.rs builds with nightly: label the items each feature adds.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod client;
mod io;
mod readiness;
#[cfg(any(feature = "smol", feature = "async-std"))]
mod reconnecting;
#[cfg(any(feature = "smol", feature = "async-std"))]
mod runtime;
mod shared;
mod stream;
#[cfg(any(feature = "smol", feature = "async-std"))]
pub mod worker;

pub use client::{Client, WithTimeout};
pub use proto::{
    self, AsyncCommands, CommandError, Config, Endpoint, Error, Job, JobId, JobStats, Options,
    ProtocolError, PutOptions, PutReceipt, ReleaseOutcome, ServerError, ServerStats, Tube,
    TubeList, TubeStats, cmd,
};
#[cfg(any(feature = "smol", feature = "async-std"))]
pub use reconnecting::ReconnectingClient;
pub use shared::{Driver, SharedClient, SharedWithTimeout};
pub use stream::DefaultStream;
#[cfg(any(feature = "smol", feature = "async-std"))]
pub use worker::{Handler, Outcome, Shutdown, Worker, WorkerBuilder, WorkerJob};
