//! Reply deadlines share one timer per client (or per shared handle) that
//! stays armed between commands: a timer armed for an earlier command must
//! neither cut a later, longer wait short nor let a later, shorter deadline
//! pass.
#![cfg(feature = "smol")]

use std::time::{Duration, Instant};

use beanstalk_async_std::{AsyncCommands, Client, Error, Options, SharedClient};
use beanstalk_test_support::Server;

/// The timer armed for `watch` (read timeout 300 ms) fires while the
/// server legitimately holds `reserve-with-timeout 1` for a second: it is
/// re-armed, and the server's `TIMED_OUT` is what the caller sees.
#[test]
fn an_earlier_deadline_does_not_cut_a_longer_wait_short() {
    smol::block_on(async {
        let server = Server::start();
        let options = Options::default().read_timeout(Duration::from_millis(300));
        let mut client = Client::connect_with(&server.url(), options).await.unwrap();
        client.watch("empty").await.unwrap();
        client.ignore("default").await.unwrap();
        let started = Instant::now();
        let result = client.reserve_with_timeout(1).await;
        assert!(matches!(result, Err(Error::TimedOut)), "{result:?}");
        assert!(started.elapsed() >= Duration::from_millis(900));
        assert!(client.is_open());
        // The client keeps working, and so does its timer.
        assert_eq!(client.watch("other").await.unwrap(), 2);
    });
}

/// After a command under the 5 s default, a call with a 200 ms timeout
/// still gives up after 200 ms.
#[test]
fn a_later_shorter_deadline_holds() {
    smol::block_on(async {
        let server = Server::start();
        let mut client = Client::connect(&server.url()).await.unwrap();
        client.watch("empty").await.unwrap();
        client.ignore("default").await.unwrap();
        let started = Instant::now();
        let result = client
            .with_timeout(Duration::from_millis(200))
            .reserve()
            .await;
        assert!(matches!(result, Err(Error::Timeout(_))), "{result:?}");
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(190) && waited < Duration::from_secs(2),
            "{waited:?}"
        );
    });
}

/// The same for a shared handle: its timer, armed for an earlier call,
/// neither fires a later, longer one early nor lets a shorter one pass.
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
