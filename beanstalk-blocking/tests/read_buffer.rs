//! The client keeps no huge read buffer after one huge reply. Alone in its
//! binary: the counter sees every allocation of the process.

use beanstalk_blocking::proto::api::Blocking;
use beanstalk_blocking::{Client, Options};
use beanstalk_test_support::large_allocations::{
    HUGE_JOB, LargeAllocationCounter, one_huge_reply_leaves_no_huge_buffer_behind,
};
use beanstalk_test_support::{Server, block_on_ready};

#[global_allocator]
static COUNTER: LargeAllocationCounter = LargeAllocationCounter;

#[test]
fn one_huge_reply_leaves_no_huge_buffer_behind_it() {
    let limit = u32::try_from(2 * HUGE_JOB).expect("fits");
    let server = Server::builder().max_job_size(limit).start();
    let options = Options::default().max_job_size(limit);
    let mut client = Client::connect_with(&server.url(), options).unwrap();
    block_on_ready(one_huge_reply_leaves_no_huge_buffer_behind(
        &server,
        &mut Blocking(&mut client),
    ));
}
