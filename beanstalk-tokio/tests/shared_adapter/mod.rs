//! The shared-handle suites' view of this crate's [`SharedClient`].

use std::future::Future;

use beanstalk_test_support::shared_suite::SharedAdapter;
use beanstalk_tokio::{Error, Options, SharedClient};

pub(crate) struct Shared;

impl SharedAdapter for Shared {
    type Handle = SharedClient;

    fn connect_with(
        address: &str,
        options: Options,
    ) -> impl Future<Output = Result<SharedClient, Error>> + Send {
        let address = address.to_owned();
        async move { SharedClient::connect_with(&address, options).await }
    }
}

/// A current-thread runtime's `block_on`, as the suites expand with.
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(future)
}
