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

/// A stream the caller connected is not asked what is still leaving it
/// (see the crate's "Bringing your own stream"): a large put through a
/// slow link fails with the read timeout while its bytes still drain,
/// though the same put goes through a client of the connect helpers (the
/// conformance suite's
/// `a_large_put_on_a_slow_but_steady_link_does_not_time_out`).
#[test]
fn a_put_through_a_caller_stream_gets_no_time_to_leave() {
    use beanstalk_async_std::{Client, PutOptions};
    use beanstalk_test_support::conformance::{LARGE_JOB_LIMIT, slow_link_for_large_jobs};
    smol::block_on(async {
        let (_server, proxy) = slow_link_for_large_jobs();
        let options = Options::default()
            .read_timeout(Duration::from_secs(1))
            .write_timeout(Duration::from_secs(2))
            .max_job_size(LARGE_JOB_LIMIT);
        let stream = smol::net::TcpStream::connect(proxy.addr()).await.unwrap();
        let mut client = Client::from_stream(stream, options);
        let body = vec![b'x'; 4 << 20];
        let started = Instant::now();
        let result = client.put(&body[..], PutOptions::default()).await;
        let waited = started.elapsed();
        assert!(
            matches!(result, Err(Error::Timeout(limit)) if limit == Duration::from_secs(1)),
            "{result:?} after {waited:?}"
        );
        // The flush, then one read timeout (extended, it would go through
        // in about 2.7 s).
        assert!(waited < Duration::from_millis(2500), "{waited:?}");
    });
}
