//! The reconnecting client on smol, against real servers that are killed
//! and restarted.
#![cfg(feature = "smol")]

use std::collections::HashMap;
use std::time::Duration;

use beanstalk_async_std::proto::cmd::CommandKind;
use beanstalk_async_std::proto::retry::{Backoff, ReconnectPolicy};
use beanstalk_async_std::{AsyncCommands, Client, Error, Options, PutOptions, ReconnectingClient};
use beanstalk_test_support::Server;

/// Quick retries, and enough of them to ride out a restart.
fn policy() -> ReconnectPolicy {
    ReconnectPolicy::default()
        .backoff(Backoff::new(Duration::from_millis(5), Duration::from_millis(100)).jitter(3))
        .max_attempts(Some(100))
}

/// kill -9 and restart with the same binlog in the middle of a stream of
/// puts: every put that returned `Ok` is on the server afterwards with its
/// body, every one that failed says its outcome is unknown, and the
/// client reconnected once.
#[test]
fn kill9_and_restart_during_puts_loses_no_acknowledged_job() {
    let mut server = Server::builder().binlog_temp().fsync_never().start();
    smol::block_on(async {
        let mut client =
            ReconnectingClient::connect_with(&server.url(), Options::default(), policy())
                .await
                .unwrap();
        client.use_tube("stream").await.unwrap();
        let mut ok = HashMap::new();
        let mut unknown = 0;
        for i in 0..1000 {
            if i == 500 {
                server.kill9();
                server.restart();
            }
            match client.put(format!("job-{i}"), PutOptions::default()).await {
                Ok(receipt) => {
                    ok.insert(receipt.id, i);
                }
                Err(error) => {
                    assert!(
                        matches!(
                            error,
                            Error::Unconfirmed {
                                command: CommandKind::Put,
                                ..
                            }
                        ),
                        "{error:?}"
                    );
                    unknown += 1;
                }
            }
        }
        assert_eq!(client.reconnects(), 1);
        assert!(unknown <= 1, "{unknown} puts unconfirmed");
        let mut check = Client::connect(&server.url()).await.unwrap();
        for (&id, &i) in &ok {
            let job = check
                .peek(id)
                .await
                .unwrap()
                .expect("an acknowledged job survives");
            assert_eq!(job.body, format!("job-{i}").as_bytes());
        }
        assert_eq!(
            check.stats_tube("stream").await.unwrap().current_jobs_ready,
            1000 - unknown
        );
    });
}

/// The server restarts while the client is idle: the next put notices the
/// closed connection before sending, goes out on a new one (after `use`
/// is restored) and is confirmed; a job reserved on the old connection is
/// refused with `LeaseLost` without being sent.
#[test]
fn after_an_idle_restart_puts_are_confirmed_and_old_leases_refused() {
    let mut server = Server::builder().binlog_temp().start();
    smol::block_on(async {
        let mut client =
            ReconnectingClient::connect_with(&server.url(), Options::default(), policy())
                .await
                .unwrap();
        client.use_tube("after").await.unwrap();
        client.watch("after").await.unwrap();
        client.put("held", PutOptions::default()).await.unwrap();
        let held = client.reserve().await.unwrap();
        server.kill9();
        server.restart();
        smol::Timer::after(Duration::from_millis(200)).await;

        let receipt = client.put("after", PutOptions::default()).await.unwrap();
        assert_eq!(client.reconnects(), 1);
        let deleted = client.delete(held.id).await;
        assert!(
            matches!(deleted, Err(Error::LeaseLost { .. })),
            "{deleted:?}"
        );

        let mut check = Client::connect(&server.url()).await.unwrap();
        let stats = check.stats_job(receipt.id).await.unwrap();
        assert_eq!(stats.tube, "after", "the tube in use was restored first");
        assert_eq!(server.stats_counter("cmd-put"), 1, "sent once");
        assert_eq!(
            server.stats_counter("cmd-delete"),
            0,
            "the lost lease was not acted on"
        );
    });
}
