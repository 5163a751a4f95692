//! How the clients' read buffers are allocated and kept: the shared
//! handle's driver copies what each read brings into its reply buffer, so
//! callers holding job bodies (slices of that buffer) do not make every
//! read allocate a large buffer afresh; and no client keeps a huge buffer
//! after one huge reply. One test, alone in its binary: the counter sees
//! every allocation of the process.
#![cfg(feature = "smol")]

mod shared_adapter;

use beanstalk_async_std::{Client, Options, SharedClient};
use beanstalk_test_support::Server;
use beanstalk_test_support::large_allocations::{
    HUGE_JOB, LargeAllocationCounter, one_huge_reply_leaves_no_huge_buffer_behind,
};
use beanstalk_test_support::shared_suite;
use shared_adapter::Shared;

#[global_allocator]
static COUNTER: LargeAllocationCounter = LargeAllocationCounter;

#[test]
fn read_buffers_allocate_little_and_keep_little() {
    smol::block_on(shared_suite::callers_holding_jobs_do_not_make_every_read_allocate::<Shared>());

    let limit = u32::try_from(2 * HUGE_JOB).expect("fits");
    let server = Server::builder().max_job_size(limit).start();
    let options = Options::default().max_job_size(limit);
    smol::block_on(async {
        let mut client = Client::connect_with(&server.url(), options).await.unwrap();
        one_huge_reply_leaves_no_huge_buffer_behind(&server, &mut client).await;
        let mut shared = SharedClient::connect_with(&server.url(), options)
            .await
            .unwrap();
        one_huge_reply_leaves_no_huge_buffer_behind(&server, &mut shared).await;
    });
}
