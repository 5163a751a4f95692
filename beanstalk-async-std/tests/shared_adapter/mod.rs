//! The shared-handle suites' view of this crate's [`SharedClient`]; the
//! suites run it on `smol::block_on`.

use std::future::Future;

use beanstalk_async_std::{Error, Options, SharedClient};
use beanstalk_test_support::shared_suite::SharedAdapter;

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
