//! The client keeps no huge read buffer after one huge reply. Alone in its
//! binary: the counter sees every allocation of the process.

use std::future::{Future, ready};

use beanstalk_blocking::proto::{self, Request};
use beanstalk_blocking::{Client, Error, Execute, Options};
use beanstalk_test_support::large_allocations::{
    HUGE_JOB, LargeAllocationCounter, one_huge_reply_leaves_no_huge_buffer_behind,
};
use beanstalk_test_support::{Server, block_on_ready};

#[global_allocator]
static COUNTER: LargeAllocationCounter = LargeAllocationCounter;

/// The client seen through the async command traits: each call completes
/// before its future is first polled.
struct Blocking(Client);

impl proto::AsyncExecute for Blocking {
    fn execute<R>(&mut self, request: R) -> impl Future<Output = Result<R::Output, Error>> + Send
    where
        R: Request + Send,
        R::Output: Send,
    {
        ready(self.0.execute(request))
    }
}

#[test]
fn one_huge_reply_leaves_no_huge_buffer_behind_it() {
    let limit = u32::try_from(2 * HUGE_JOB).expect("fits");
    let server = Server::builder().max_job_size(limit).start();
    let options = Options::default().max_job_size(limit);
    let mut client = Blocking(Client::connect_with(&server.url(), options).unwrap());
    block_on_ready(one_huge_reply_leaves_no_huge_buffer_behind(
        &server,
        &mut client,
    ));
}
