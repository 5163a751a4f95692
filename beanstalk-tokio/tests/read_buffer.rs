//! The shared handle's driver sizes its reads by what arrives, so callers
//! holding job bodies (slices of its read buffer) do not make every read
//! allocate a large buffer afresh. Alone in its binary: the counter sees
//! every allocation of the process.

mod shared_adapter;

use beanstalk_test_support::large_allocations::LargeAllocationCounter;
use beanstalk_test_support::shared_suite;
use shared_adapter::{Shared, block_on};

#[global_allocator]
static COUNTER: LargeAllocationCounter = LargeAllocationCounter;

#[test]
fn callers_holding_jobs_do_not_make_every_read_allocate() {
    block_on(shared_suite::callers_holding_jobs_do_not_make_every_read_allocate::<Shared>());
}
