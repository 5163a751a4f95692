//! The worker pool against real servers: the shared worker suite
//! (exactly-once processing, touching, failure policy, graceful shutdown,
//! restarts, cut connections, draining), on smol and on async-std.

mod smol_runtime {
    #[cfg(feature = "smol")]
    beanstalk_test_support::worker_suite!(beanstalk_async_std::Client, smol::block_on);
}

mod async_std_runtime {
    #[cfg(feature = "async-std")]
    beanstalk_test_support::worker_suite!(beanstalk_async_std::Client, async_std::task::block_on);
}
