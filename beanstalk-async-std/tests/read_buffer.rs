//! The shared handle's driver copies what each read brings into its reply
//! buffer, so callers holding job bodies (slices of that buffer) do not make
//! every read allocate a large buffer afresh. Alone in its binary: the
//! counter sees every allocation of the process.
#![cfg(feature = "smol")]

mod shared_adapter;

use beanstalk_test_support::large_allocations::LargeAllocationCounter;
use beanstalk_test_support::shared_suite;
use shared_adapter::Shared;

#[global_allocator]
static COUNTER: LargeAllocationCounter = LargeAllocationCounter;

#[test]
fn callers_holding_jobs_do_not_make_every_read_allocate() {
    smol::block_on(shared_suite::callers_holding_jobs_do_not_make_every_read_allocate::<Shared>());
}
