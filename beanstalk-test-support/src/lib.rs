//! Test fixtures shared by every beanstalk-rs adapter (blocking, tokio, smol/async-std).
//!
//! Everything here is plain `std` (threads, `std::net`, `std::process`), so the
//! same fixtures serve blocking and async test suites alike and no runtime is
//! pulled into a test binary that does not want it.
//!
//! * [`Server`] starts a private `beanstalkd` per test on a free loopback port
//!   (or a Unix socket in a temporary directory), and can kill, restart, drain
//!   and stop it. [`Server::stats_counter`] and [`Server::raw_command`] talk to it
//!   over a fresh connection that does not involve the client under test.
//! * [`FaultProxy`] sits between a client and a server, on TCP loopback or
//!   a Unix socket, and injects faults described by a [`FaultPlan`]: 1-byte
//!   chunks, delays, holds, cuts, stalls, corrupted bytes and half-closes.
//!   It counts what it forwards each way, and tells when it last did.
//! * [`FakePeer`] is a listener whose every connection is handled by a closure,
//!   for replies that no real beanstalkd would send.
//! * [`conformance`] is the suite every adapter runs, written once against
//!   the core's command traits and expanded per adapter and runtime by
//!   [`conformance_suite!`].
//! * [`worker_suite`](mod@worker_suite) is the same for the async adapters'
//!   worker (the core's `Pool` over their `Client`), expanded by
//!   [`worker_suite!`](macro@worker_suite).
//! * [`shared_suite`](mod@shared_suite) checks the async adapters' shared
//!   handles where their driver reads replies in batches, expanded by
//!   [`shared_suite!`](macro@shared_suite).
//! * [`cpus`] pins a test's thread and its server to chosen CPUs.
//! * [`large_allocations`] counts a test binary's large allocations, for
//!   tests about how a driver sizes its buffers.
//!
//! Tests never share state: every fixture picks its own port or directory and
//! cleans up in `Drop`, even while a failing test unwinds.
//!
//! ```no_run
//! use beanstalk_test_support::{Direction, FaultPlan, FaultProxy, Server};
//!
//! let server = Server::builder().binlog_temp().start();
//! let before = server.stats_counter("cmd-put");
//! let proxy = FaultProxy::start(
//!     &server.addr(),
//!     FaultPlan::new().cut_after(Direction::Downstream, 7),
//! );
//! // ... point the client under test at proxy.url() ...
//! assert_eq!(server.stats_counter("cmd-put"), before);
//! ```
//!
//! The crate needs a Unix-like system, as beanstalkd itself does.

#[cfg(not(unix))]
compile_error!(
    "beanstalk-test-support drives beanstalkd through Unix signals and sockets; it only builds on Unix"
);

use std::future::Future;

pub mod conformance;
pub mod cpus;
mod full_backlog;
pub mod large_allocations;
mod proxy;
mod server;
pub mod shared_suite;
mod stream;
pub mod worker_suite;

pub use full_backlog::FullBacklogListener;
pub use proxy::{Direction, FakePeer, FaultPlan, FaultProxy, PausablePutServer, ScriptedServer};
pub use server::{Address, Server, ServerBuilder};

/// Runs a future that never waits, such as an async wrapper around a
/// blocking client, to completion on the current thread.
///
/// # Panics
/// If the future returns `Pending`: it needed a real runtime.
pub fn block_on_ready<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut context) {
        std::task::Poll::Ready(output) => output,
        std::task::Poll::Pending => panic!("block_on_ready: the future is waiting for a runtime"),
    }
}
