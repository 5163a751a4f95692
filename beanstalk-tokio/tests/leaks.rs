//! What the tokio client leaves behind after producers and a worker went
//! through mixed faults and a restart: no task alive on the runtime once
//! they returned, and no file descriptor more than before once the
//! runtime is gone.
//!
//! The only test in its binary, so no other test's sockets are counted:
//! test binaries run their tests side by side in one process.

use std::future::Future;

use beanstalk_test_support::worker_suite::mixed_faults::{self, AsyncClients, BlockOn, Count};

/// A multi-threaded runtime per run, as services use; it counts its tasks.
struct Tokio;

impl BlockOn for Tokio {
    fn block_on<F: Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime")
            .block_on(future)
    }

    fn tasks_alive() -> Option<usize> {
        Some(
            tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks(),
        )
    }
}

#[test]
fn mixed_faults_leave_nothing_behind() {
    mixed_faults::mixed_faults_leave_nothing_behind::<AsyncClients<beanstalk_tokio::Client, Tokio>>(
        Count::Fds,
    );
}

#[global_allocator]
static COUNTER: beanstalk_test_support::large_allocations::LargeAllocationCounter =
    beanstalk_test_support::large_allocations::LargeAllocationCounter;
