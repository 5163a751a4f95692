//! The reconnecting client against real servers: kill -9 and restart with a
//! binlog during a stream of puts, lost replies, cut connections, leases on
//! lost connections, and a draining server.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use beanstalk_test_support::{Direction, FaultPlan, FaultProxy, Server};
use beanstalk_tokio::proto::cmd::CommandKind;
use beanstalk_tokio::proto::retry::{Backoff, PutRetry, ReconnectPolicy};
use beanstalk_tokio::proto::stats::JobState;
use beanstalk_tokio::{
    AsyncCommands, Client, CommandError, Error, Options, PutOptions, ReconnectingClient,
};

/// Quick retries, and enough of them to ride out a restart.
fn policy() -> ReconnectPolicy {
    ReconnectPolicy::default()
        .backoff(Backoff::new(Duration::from_millis(5), Duration::from_millis(100)).jitter(3))
        .max_attempts(Some(100))
}

async fn connect(url: &str, policy: ReconnectPolicy) -> ReconnectingClient {
    ReconnectingClient::connect_with(url, Options::default(), policy)
        .await
        .unwrap()
}

/// Waits (up to 5 s) until `condition` holds.
async fn eventually(mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !condition() {
        assert!(Instant::now() < deadline, "condition not reached in 5 s");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// kill -9 twice while puts stream in, restarting with the same binlog:
/// every put that returned `Ok` is on the server afterwards with its body,
/// every put that failed says its outcome is unknown, and nothing was
/// duplicated (at most once: no more jobs than puts that may have worked).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_and_restart_during_put_stream_loses_no_acknowledged_job() {
    const PUTS: u64 = 3000;
    let mut server = Server::builder().binlog_temp().fsync_never().start();
    let mut client = connect(&server.url(), policy()).await;
    client.use_tube("stream").await.unwrap();

    let acked = Arc::new(AtomicU64::new(0));
    let producer = tokio::spawn({
        let acked = Arc::clone(&acked);
        async move {
            let mut ok = HashMap::new();
            let mut unknown = Vec::new();
            for i in 0..PUTS {
                match client.put(format!("job-{i}"), PutOptions::default()).await {
                    Ok(receipt) => {
                        ok.insert(receipt.id, i);
                        acked.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(error) => {
                        assert!(error.outcome_unknown(), "put {i}: {error}");
                        unknown.push((i, error.to_string()));
                    }
                }
            }
            (ok, unknown, client.reconnects())
        }
    });

    let started = Instant::now();
    for at in [PUTS / 4, PUTS * 2 / 3] {
        let acked = Arc::clone(&acked);
        eventually(move || acked.load(Ordering::SeqCst) >= at).await;
        server.kill9();
        tokio::time::sleep(Duration::from_millis(50)).await; // connection refused meanwhile
        server.restart();
    }
    let (ok, unknown, reconnects) = producer.await.unwrap();
    println!(
        "{} acknowledged, {} unconfirmed, {reconnects} reconnects in {:?}",
        ok.len(),
        unknown.len(),
        started.elapsed()
    );
    assert_eq!(reconnects, 2, "one reconnect per restart");
    assert_eq!(ok.len() as u64 + unknown.len() as u64, PUTS);
    for (_, message) in &unknown {
        assert!(message.contains("may or may not exist"), "{message}");
    }

    // Every acknowledged job survived, with its body.
    let mut check = Client::connect(&server.url()).await.unwrap();
    for (&id, &i) in &ok {
        let job = check.peek(id).await.unwrap();
        let job = job.unwrap_or_else(|| panic!("acknowledged job {id} (put {i}) is gone"));
        assert_eq!(job.body, format!("job-{i}").as_bytes());
    }
    // No duplicates: at most one job per put that may have worked.
    let stats = check.stats_tube("stream").await.unwrap();
    assert!(stats.current_jobs_ready >= ok.len() as u64);
    assert!(stats.current_jobs_ready <= PUTS);
}

/// A put whose reply is lost fails with `Unconfirmed`, saying the job may
/// exist; it did, and it was not sent again. The next call reconnects and
/// restores the tube in use first.
#[tokio::test]
async fn lost_put_reply_is_reported_not_resent() {
    let server = Server::start();
    // First connection: let `USING lost\r\n` through, then hold every reply.
    let proxy = FaultProxy::start(
        &server.addr(),
        FaultPlan::new()
            .stall_after(Direction::Downstream, 12)
            .first_connections(1),
    );
    let mut client = connect(&proxy.url(), policy()).await;
    client.use_tube("lost").await.unwrap();
    let put = tokio::spawn(async move {
        let result = client.put("maybe", PutOptions::default()).await;
        (client, result)
    });
    eventually(|| server.stats_counter("cmd-put") == 1).await;
    proxy.cut_all();
    let (mut client, result) = put.await.unwrap();
    let error = result.unwrap_err();
    assert!(error.outcome_unknown());
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
    assert!(
        error.to_string().contains("job may or may not exist"),
        "{error}"
    );
    // It was not re-sent: one put reached the server, and its job exists.
    assert_eq!(server.stats_counter("cmd-put"), 1);

    // The next put goes out on a new connection, into the restored tube.
    client.put("sure", PutOptions::default()).await.unwrap();
    assert_eq!(client.reconnects(), 1);
    let mut check = Client::connect(&server.url()).await.unwrap();
    assert_eq!(
        check.stats_tube("lost").await.unwrap().current_jobs_ready,
        2
    );
}

/// With at-least-once puts the same lost reply is re-sent: the call
/// succeeds, and the server holds a duplicate, as documented.
#[tokio::test]
async fn at_least_once_put_is_resent_and_may_duplicate() {
    let server = Server::start();
    let proxy = FaultProxy::start(
        &server.addr(),
        FaultPlan::new()
            .stall_after(Direction::Downstream, 12)
            .first_connections(1),
    );
    let mut client = connect(&proxy.url(), policy().put_retry(PutRetry::AtLeastOnce)).await;
    client.use_tube("lost").await.unwrap();
    let put = tokio::spawn(async move {
        let result = client.put("twice", PutOptions::default()).await;
        (client, result)
    });
    eventually(|| server.stats_counter("cmd-put") == 1).await;
    proxy.cut_all();
    let (client, result) = put.await.unwrap();
    result.unwrap();
    assert_eq!(client.reconnects(), 1);
    assert_eq!(server.stats_counter("cmd-put"), 2);
    let mut check = Client::connect(&server.url()).await.unwrap();
    assert_eq!(
        check.stats_tube("lost").await.unwrap().current_jobs_ready,
        2
    );
}

/// After a cut, the new connection gets the tube in use and the watch list
/// back before anything else, as the server last confirmed them.
#[tokio::test]
async fn session_is_restored_on_the_new_connection() {
    let server = Server::start();
    let proxy = FaultProxy::start(&server.addr(), FaultPlan::new());
    let mut client = connect(&proxy.url(), policy()).await;
    client.use_tube("out").await.unwrap();
    client.watch("in-1").await.unwrap();
    client.watch("in-2").await.unwrap();
    client.ignore("default").await.unwrap();
    proxy.cut_all();

    // `list-tube-used` is idempotent: re-sent on the new connection.
    assert_eq!(client.list_tube_used().await.unwrap().as_str(), "out");
    assert_eq!(client.reconnects(), 1);
    let watched = client.list_tubes_watched().await.unwrap();
    let mut watched: Vec<_> = watched.iter().collect();
    watched.sort_unstable();
    assert_eq!(watched, ["in-1", "in-2"]);
    client.put("x", PutOptions::default()).await.unwrap();
    let mut check = Client::connect(&server.url()).await.unwrap();
    assert_eq!(check.stats_tube("out").await.unwrap().current_jobs_ready, 1);
    assert_eq!(proxy.connections(), 2);
}

/// A connection cut while `reserve` waits: the reserve is sent again on a
/// new connection (with the watch list restored) and gets the next job.
#[tokio::test]
async fn cut_during_reserve_reconnects_and_reserves_again() {
    let server = Server::start();
    let proxy = FaultProxy::start(&server.addr(), FaultPlan::new());
    let mut client = connect(&proxy.url(), policy()).await;
    client.watch("work").await.unwrap();
    client.ignore("default").await.unwrap();
    let reserve = tokio::spawn(async move {
        let job = client.reserve().await;
        (client, job)
    });
    eventually(|| server.stats_counter("current-waiting") == 1).await;
    proxy.cut_all();
    eventually(|| proxy.connections() == 2 && server.stats_counter("current-waiting") == 1).await;

    let mut producer = Client::connect(&server.url()).await.unwrap();
    producer.use_tube("work").await.unwrap();
    let put = producer
        .put("after the cut", PutOptions::default())
        .await
        .unwrap();
    let (client, job) = reserve.await.unwrap();
    let job = job.unwrap();
    assert_eq!((job.id, &job.body[..]), (put.id, &b"after the cut"[..]));
    assert_eq!(client.reconnects(), 1);
    assert!(client.leases().is_held(job.id));
}

/// Jobs reserved on a lost connection: delete, release, bury and touch are
/// refused with `LeaseLost` and never reach the server; the job is back in
/// the ready queue, and once reserved again it can be deleted.
#[tokio::test]
async fn lost_leases_are_refused_without_sending() {
    let server = Server::start();
    let proxy = FaultProxy::start(&server.addr(), FaultPlan::new());
    let mut producer = Client::connect(&server.url()).await.unwrap();
    let put = producer.put("held", PutOptions::default()).await.unwrap();

    let mut client = connect(&proxy.url(), policy()).await;
    let job = client.reserve().await.unwrap();
    assert_eq!(job.id, put.id);
    assert_eq!(client.generation(), 0);
    proxy.cut_all();

    // The first command after the cut finds the connection dead: a touch
    // is not re-sent, so it is unconfirmed (and the lease is now lost).
    let touched = client.touch(job.id).await.unwrap_err();
    assert!(
        matches!(
            touched,
            Error::Unconfirmed {
                command: CommandKind::Touch,
                ..
            }
        ),
        "{touched:?}"
    );
    client.stats().await.unwrap(); // reconnects
    assert_eq!(client.generation(), 1);

    let before: Vec<u64> = ["cmd-delete", "cmd-release", "cmd-bury", "cmd-touch"]
        .iter()
        .map(|key| server.stats_counter(key))
        .collect();
    for result in [
        client.delete(job.id).await,
        client.release(job.id, 0, 0).await.map(drop),
        client.bury(job.id, 0).await,
        client.touch(job.id).await,
    ] {
        let error = result.unwrap_err();
        assert!(
            matches!(error, Error::LeaseLost { job_id } if job_id == job.id),
            "{error:?}"
        );
        assert!(!error.outcome_unknown());
        assert!(error.to_string().contains("nothing was sent"));
    }
    let after: Vec<u64> = ["cmd-delete", "cmd-release", "cmd-bury", "cmd-touch"]
        .iter()
        .map(|key| server.stats_counter(key))
        .collect();
    assert_eq!(before, after, "nothing was sent for lost leases");
    assert_eq!(
        server.stats_counter("current-jobs-ready"),
        1,
        "the server released the job"
    );

    // Reserved again on the new connection, the job is ours to delete.
    let again = client.reserve_with_timeout(1).await.unwrap();
    assert_eq!(again.id, job.id);
    client.delete(job.id).await.unwrap();
    assert!(producer.peek(job.id).await.unwrap().is_none());
}

/// DRAINING is not a connection failure: puts fail with `Draining` at
/// once, the client does not reconnect, and reserving still works.
#[tokio::test]
async fn draining_fails_puts_without_reconnecting() {
    let server = Server::start();
    let mut client = connect(&server.url(), policy()).await;
    client.put("before", PutOptions::default()).await.unwrap();
    server.drain();
    let connections = server.stats_counter("total-connections");
    let started = Instant::now();
    for _ in 0..50 {
        let error = client
            .put("refused", PutOptions::default())
            .await
            .unwrap_err();
        assert!(matches!(error, Error::Draining), "{error:?}");
        assert!(!error.outcome_unknown());
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "no backoff, no reconnects"
    );
    assert_eq!(client.reconnects(), 0);
    // Only the two helper connections of stats_counter itself were opened.
    assert_eq!(server.stats_counter("total-connections"), connections + 1);
    let job = client.reserve_with_timeout(1).await.unwrap();
    client.delete(job.id).await.unwrap();
}

/// A call gives up after the policy's attempts while the server is down,
/// with backoff in between; once the server is back the next call works.
#[tokio::test]
async fn bounded_attempts_while_the_server_is_down() {
    let mut server = Server::start();
    let policy = ReconnectPolicy::default()
        .backoff(Backoff::new(
            Duration::from_millis(20),
            Duration::from_millis(80),
        ))
        .max_attempts(Some(4));
    let mut client = connect(&server.url(), policy).await;
    client.use_tube("back").await.unwrap();
    server.kill9();

    let started = Instant::now();
    let error = client.stats().await.unwrap_err();
    let waited = started.elapsed();
    assert!(error.is_connection_error(), "{error:?}");
    // Four attempts: the break, then three refused connects after 20, 40 and 80 ms.
    assert!(waited >= Duration::from_millis(140), "{waited:?}");
    assert!(waited < Duration::from_secs(2), "{waited:?}");

    server.restart();
    client
        .put("back again", PutOptions::default())
        .await
        .unwrap();
    assert_eq!(client.list_tube_used().await.unwrap().as_str(), "back");
    assert_eq!(client.reconnects(), 1);
}

/// The server restarts while the client is idle: the next put notices the
/// closed connection before sending, goes out on a new one and is
/// confirmed, rather than being written into the dead socket and reported
/// as unknown.
#[tokio::test]
async fn put_after_an_idle_restart_is_confirmed() {
    let mut server = Server::builder().binlog_temp().start();
    let mut client = connect(&server.url(), policy()).await;
    client.use_tube("after").await.unwrap();
    client.put("before", PutOptions::default()).await.unwrap();
    server.kill9();
    server.restart();
    // Idle: the runtime sees the old connection's end meanwhile.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let receipt = client.put("after", PutOptions::default()).await.unwrap();
    assert_eq!(client.reconnects(), 1);
    let mut check = Client::connect(&server.url()).await.unwrap();
    let stats = check.stats_job(receipt.id).await.unwrap();
    assert_eq!(stats.tube, "after", "the tube in use was restored first");
    assert_eq!(server.stats_counter("cmd-put"), 1, "sent once");
}

/// A caller's error is not a lost connection: a zero timeout fails the
/// connect at once instead of being retried through the whole backoff
/// (about 6 s with the default policy).
#[tokio::test]
async fn a_zero_timeout_is_not_retried() {
    let server = Server::start();
    let zero = Options::default().write_timeout(Duration::ZERO);
    // Each look at the stats is a connection of its own.
    let connections = server.stats_counter("total-connections");
    let started = Instant::now();
    let refused = ReconnectingClient::connect_with(&server.url(), zero, Default::default()).await;
    assert!(
        matches!(
            refused,
            Err(Error::Command(CommandError::ZeroTimeout { which: "write" }))
        ),
        "{:?}",
        refused.err()
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        server.stats_counter("total-connections"),
        connections + 1,
        "no connection was opened"
    );
}

/// A job larger than the client's `max_job_size` is not a server's
/// failure: its body is read and dropped, the call fails once with the
/// job's id, and the job stays reserved on the same connection, where it
/// can be buried (sent again, the reserve would get it back for ever).
#[tokio::test]
async fn a_job_past_the_clients_limit_stays_reserved_to_be_buried() {
    let server = Server::builder().max_job_size(300_000).start();
    let mut producer =
        Client::connect_with(&server.url(), Options::default().max_job_size(300_000))
            .await
            .unwrap();
    let id = producer
        .put(vec![b'x'; 100_000], PutOptions::default())
        .await
        .unwrap()
        .id;
    // Attempts without end, as a worker's client has.
    let mut client = connect(&server.url(), policy().max_attempts(None)).await;
    let reserved = tokio::time::timeout(Duration::from_secs(3), client.reserve_with_timeout(0))
        .await
        .expect("the reserve returns");
    assert!(
        matches!(
            reserved,
            Err(Error::JobTooLarge {
                id: reserved_id,
                len: 100_000,
                ..
            }) if reserved_id == id
        ),
        "{reserved:?}"
    );
    let stats = producer.stats_job(id).await.unwrap();
    assert_eq!((stats.reserves, stats.state), (1, JobState::Reserved));
    client.bury(id, stats.pri).await.unwrap();
    assert_eq!(
        producer.stats_job(id).await.unwrap().state,
        JobState::Buried
    );
    client.put("next", PutOptions::default()).await.unwrap();
    assert_eq!(client.reconnects(), 0);
}
