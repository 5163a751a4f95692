//! What the blocking client leaves behind after producers and a worker
//! went through mixed faults and a restart: no file descriptor and no
//! thread more than before.
//!
//! The only test in its binary, so no other test's sockets or threads are
//! counted: test binaries run their tests side by side in one process.

mod soak;

#[test]
fn mixed_faults_leave_nothing_behind() {
    use beanstalk_test_support::worker_suite::mixed_faults::{self, Count};
    mixed_faults::mixed_faults_leave_nothing_behind::<soak::BlockingClients>(Count::FdsAndThreads);
}

#[global_allocator]
static COUNTER: beanstalk_test_support::large_allocations::LargeAllocationCounter =
    beanstalk_test_support::large_allocations::LargeAllocationCounter;
