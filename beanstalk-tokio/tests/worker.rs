//! The worker pool against real servers: the shared worker suite
//! (exactly-once processing, touching, failure policy, graceful shutdown,
//! restarts, cut connections, draining), on a multi-threaded tokio runtime
//! as services run it.

use std::future::Future;

fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(future)
}

beanstalk_test_support::worker_suite!(beanstalk_tokio::Client, block_on);
