//! What the smol/async-std client leaves behind after producers and a
//! worker went through mixed faults and a restart: no file descriptor more
//! than before. Their executors and reactor live as long as the process,
//! so a task left running would still hold its socket.
//!
//! The only test in its binary, so no other test's sockets are counted:
//! test binaries run their tests side by side in one process. It runs the
//! scenario on smol, then on async-std.

use std::future::Future;

use beanstalk_test_support::worker_suite::mixed_faults::{self, AsyncClients, BlockOn, Count};

type Client = beanstalk_async_std::Client;

struct Smol;

impl BlockOn for Smol {
    fn block_on<F: Future>(future: F) -> F::Output {
        smol::block_on(future)
    }
}

#[cfg(feature = "async-std")]
struct AsyncStd;

#[cfg(feature = "async-std")]
impl BlockOn for AsyncStd {
    fn block_on<F: Future>(future: F) -> F::Output {
        async_std::task::block_on(future)
    }
}

#[test]
fn mixed_faults_leave_nothing_behind() {
    mixed_faults::mixed_faults_leave_nothing_behind::<AsyncClients<Client, Smol>>(Count::Fds);
    #[cfg(feature = "async-std")]
    mixed_faults::mixed_faults_leave_nothing_behind::<AsyncClients<Client, AsyncStd>>(Count::Fds);
}

#[global_allocator]
static COUNTER: beanstalk_test_support::large_allocations::LargeAllocationCounter =
    beanstalk_test_support::large_allocations::LargeAllocationCounter;
