//! Reply deadlines share one timer per shared handle that stays armed
//! between commands: a timer armed for an earlier call must neither cut a
//! later, longer one short nor let a shorter one pass. The same for a
//! `Client` is in the conformance suite, for every adapter.
#![cfg(feature = "smol")]

use std::time::{Duration, Instant};

use beanstalk_async_std::{AsyncCommands, Error, Options, SharedClient};
use beanstalk_test_support::Server;

/// Calls answered at once over more than the read timeout, then one
/// under a shorter timeout of its own.
#[test]
fn shared_handle_deadlines() {
    smol::block_on(async {
        let server = Server::start();
        let options = Options::default().read_timeout(Duration::from_millis(300));
        let mut client = SharedClient::connect_with(&server.url(), options)
            .await
            .unwrap();
        client.watch("empty").await.unwrap();
        client.ignore("default").await.unwrap();
        // Commands answered at once, spread over more than the read timeout.
        for _ in 0..5 {
            client.list_tube_used().await.unwrap();
            smol::Timer::after(Duration::from_millis(100)).await;
        }
        let started = Instant::now();
        let result = client
            .with_timeout(Duration::from_millis(150))
            .reserve_with_timeout(0)
            .await;
        assert!(matches!(result, Err(Error::TimedOut)), "{result:?}");
        assert!(started.elapsed() < Duration::from_millis(150));
        assert!(client.is_open());
    });
}
