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

/// Timeouts near the largest the clock can hold, one after another on the
/// same client: moving the armed timer never overflows the clock.
#[test]
fn deadlines_near_the_clocks_limit_do_not_overflow() {
    use beanstalk_async_std::{Client, PutOptions};
    smol::block_on(async {
        let server = Server::start();
        let mut client = Client::connect(&server.url()).await.unwrap();
        let far = Duration::from_secs(i64::MAX as u64 - 10_000_000);
        client
            .with_timeout(far)
            .put("x", PutOptions::default())
            .await
            .unwrap();
        let nearer = far - Duration::from_secs(1);
        client
            .with_timeout(nearer)
            .put("x", PutOptions::default())
            .await
            .unwrap();
        client.put("x", PutOptions::default()).await.unwrap();
    });
}

/// Zero timeouts given to `from_stream` (which cannot fail) are refused by
/// pipelines too, before anything is sent, and the connection stays open.
#[test]
fn zero_options_from_a_stream_refuse_pipelines_before_sending() {
    use beanstalk_async_std::{Client, CommandError, PutOptions, cmd};
    smol::block_on(async {
        let server = Server::start();
        let stream = smol::net::TcpStream::connect(server.tcp_addr())
            .await
            .unwrap();
        let mut client =
            Client::from_stream(stream, Options::default().read_timeout(Duration::ZERO));
        let puts = (0..3).map(|_| cmd::Put::new("x", PutOptions::default()).unwrap());
        let results = client.execute_many(puts).await;
        assert_eq!(results.len(), 3);
        assert!(
            results.iter().all(|r| matches!(
                r,
                Err(Error::Command(CommandError::ZeroTimeout { which: "read" }))
            )),
            "{results:?}"
        );
        let put = cmd::Put::new("x", PutOptions::default()).unwrap();
        assert!(matches!(
            client.send(&put),
            Err(Error::Command(CommandError::ZeroTimeout { which: "read" }))
        ));
        assert!(client.is_open());
        assert_eq!(server.stats_counter("cmd-put"), 0, "nothing was sent");
    });
}
