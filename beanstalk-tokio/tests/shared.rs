//! Many tasks on one shared connection.

mod shared_adapter;

use std::time::Duration;

use beanstalk_test_support::{Direction, FaultPlan, FaultProxy, Server};
use beanstalk_tokio::{AsyncCommands, CommandError, Error, Options, PutOptions, SharedClient};

use shared_adapter::{Shared, block_on};

beanstalk_test_support::shared_suite!(Shared, block_on);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_never_put_into_another_tasks_tube() {
    let server = Server::start();
    let client = SharedClient::connect(&server.url()).await.unwrap();
    let mut tasks = Vec::new();
    for task in 0..32u32 {
        let mut handle = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..200u32 {
                // Switch tubes half-way, so `use` commands interleave with others' puts.
                let tube = format!("t{task}-{}", i / 100);
                if i % 100 == 0 {
                    handle.use_tube(tube.as_str()).await.unwrap();
                }
                let id = handle
                    .put(format!("{task}:{i}"), PutOptions::default())
                    .await
                    .unwrap()
                    .id;
                ids.push((id, tube));
            }
            ids
        }));
    }
    let mut check = client.clone();
    let mut total = 0;
    for task in tasks {
        for (id, tube) in task.await.unwrap() {
            let stats = check.stats_job(id).await.unwrap();
            assert_eq!(
                stats.tube,
                tube.as_str(),
                "job {id} landed in the wrong tube"
            );
            total += 1;
        }
    }
    assert_eq!(total, 32 * 200);
    assert_eq!(server.stats_counter("cmd-put"), 32 * 200);
}

#[tokio::test]
async fn shared_handles_refuse_waiting_reserves() {
    let server = Server::start();
    let mut client = SharedClient::connect(&server.url()).await.unwrap();
    assert!(matches!(
        client.reserve().await,
        Err(Error::Command(CommandError::WouldBlockShared))
    ));
    assert!(matches!(
        client.reserve_with_timeout(5).await,
        Err(Error::Command(CommandError::WouldBlockShared))
    ));
    let id = client.put("x", PutOptions::default()).await.unwrap().id;
    assert_eq!(
        client.reserve_with_timeout(0).await.unwrap().id,
        id,
        "a zero timeout never waits"
    );
    assert_eq!(server.stats_counter("cmd-reserve"), 0);
}

#[tokio::test]
async fn a_timeout_fails_every_call_in_flight_and_closes() {
    let server = Server::start();
    let proxy = FaultProxy::start(&server.addr(), FaultPlan::new());
    let options = Options::default().read_timeout(Duration::from_millis(300));
    let client = SharedClient::connect_with(&proxy.url(), options)
        .await
        .unwrap();
    client
        .clone()
        .put("before", PutOptions::default())
        .await
        .unwrap();
    proxy.stall_now();
    let started = std::time::Instant::now();
    let calls: Vec<_> = (0..10)
        .map(|i| {
            let mut handle = client.clone();
            tokio::spawn(async move {
                handle
                    .put(format!("stalled {i}"), PutOptions::default())
                    .await
            })
        })
        .collect();
    let mut timeouts = 0;
    for call in calls {
        let error = call.await.unwrap().unwrap_err();
        assert!(error.outcome_unknown(), "{error}");
        timeouts += usize::from(matches!(error, Error::Timeout(_)));
    }
    // The oldest call's reply was late: it gets the timeout, the others
    // the broken connection, all within the read timeout and a margin.
    assert_eq!(timeouts, 1);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(290) && waited < Duration::from_millis(1300),
        "{waited:?}"
    );
    assert!(!client.is_open());
    assert!(
        client
            .clone()
            .stats()
            .await
            .unwrap_err()
            .is_connection_error()
    );
}

#[tokio::test]
async fn dropped_calls_do_not_disturb_the_others() {
    let server = Server::start();
    let client = SharedClient::connect(&server.url()).await.unwrap();
    let mut handle = client.clone();
    for i in 0..300u32 {
        let put = handle.put(format!("{i}"), PutOptions::default());
        if i % 3 == 0 {
            drop(tokio::time::timeout(Duration::from_micros(1), put).await);
            continue;
        }
        let id = put.await.unwrap().id;
        assert_eq!(
            handle.peek(id).await.unwrap().unwrap().body,
            format!("{i}").as_bytes()
        );
    }
    assert!(client.is_open());
}

#[tokio::test]
async fn the_driver_stops_when_every_handle_is_gone() {
    let server = Server::start();
    let client = SharedClient::connect(&server.url()).await.unwrap();
    client
        .clone()
        .put("x", PutOptions::default())
        .await
        .unwrap();
    drop(client);
    let mut connections = u64::MAX;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        // The stats connection itself is the only one left.
        connections = server.stats_counter("current-connections");
        if connections == 1 {
            break;
        }
    }
    assert_eq!(connections, 1, "the shared connection was not closed");
}

#[tokio::test]
async fn quit_completes_at_once_and_closes_for_every_handle() {
    let server = Server::start();
    let client = SharedClient::connect(&server.url()).await.unwrap();
    let mut first = client.clone();
    first.put("x", PutOptions::default()).await.unwrap();
    tokio::time::timeout(Duration::from_secs(2), first.quit())
        .await
        .expect("quit has no reply to wait for")
        .unwrap();
    let mut second = client.clone();
    assert!(matches!(
        second.stats().await,
        Err(Error::Command(CommandError::Closed))
    ));
    assert!(!client.is_open());
}

/// Timeouts past what the clock can hold mean no timeout: the driver
/// neither panics on the deadline arithmetic (it did) nor expires.
#[tokio::test]
async fn unbounded_timeouts_mean_no_deadline() {
    let server = Server::start();
    let options = Options::default()
        .read_timeout(Duration::MAX)
        .write_timeout(Duration::MAX);
    let mut client = SharedClient::connect_with(&server.url(), options)
        .await
        .unwrap();
    let id = client.put("x", PutOptions::default()).await.unwrap().id;
    let mut unbounded = client.with_timeout(Duration::MAX);
    assert_eq!(unbounded.reserve_with_timeout(0).await.unwrap().id, id);
    client.delete(id).await.unwrap();
    assert!(matches!(
        client.reserve_with_timeout(0).await,
        Err(Error::TimedOut)
    ));
}

/// A one-call timeout shorter than the read timeout holds, and running
/// out closes the connection for every handle, as any timeout does.
#[tokio::test]
async fn a_call_timeout_holds_and_closes_the_connection() {
    let server = Server::start();
    let proxy = FaultProxy::start(&server.addr(), FaultPlan::new());
    let mut client = SharedClient::connect(&proxy.url()).await.unwrap();
    let other = client.clone();
    client.put("x", PutOptions::default()).await.unwrap();
    proxy.stall_now();
    let started = std::time::Instant::now();
    let result = client
        .with_timeout(Duration::from_millis(200))
        .put("y", PutOptions::default())
        .await;
    let waited = started.elapsed();
    assert!(
        matches!(result, Err(Error::Timeout(limit)) if limit == Duration::from_millis(200)),
        "{result:?}"
    );
    assert!(
        waited >= Duration::from_millis(190) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
    assert!(!other.is_open());
}

/// Calls answered at once over more than the read timeout, then one under
/// a shorter timeout of its own: the handle's timer, armed for an earlier
/// call, neither fires early nor lets the shorter deadline pass.
#[tokio::test]
async fn call_timeouts_after_earlier_calls() {
    let server = Server::start();
    let options = Options::default().read_timeout(Duration::from_millis(300));
    let mut client = SharedClient::connect_with(&server.url(), options)
        .await
        .unwrap();
    client.watch("empty").await.unwrap();
    client.ignore("default").await.unwrap();
    for _ in 0..5 {
        client
            .with_timeout(Duration::from_millis(250))
            .list_tube_used()
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let started = std::time::Instant::now();
    let result = client
        .with_timeout(Duration::from_millis(150))
        .reserve_with_timeout(0)
        .await;
    assert!(matches!(result, Err(Error::TimedOut)), "{result:?}");
    assert!(started.elapsed() < Duration::from_millis(150));
    assert!(client.is_open());
}

/// A zero timeout is refused before anything is queued: the connection
/// stays open for every handle, and no job was put.
#[tokio::test]
async fn zero_timeouts_are_refused_before_anything_is_sent() {
    let server = Server::start();
    let refused = SharedClient::connect_with(
        &server.url(),
        Options::default().read_timeout(Duration::ZERO),
    )
    .await;
    assert!(
        matches!(
            refused,
            Err(Error::Command(CommandError::ZeroTimeout { which: "read" }))
        ),
        "{:?}",
        refused.err()
    );
    let mut client = SharedClient::connect(&server.url()).await.unwrap();
    let other = client.clone();
    let refused = client
        .with_timeout(Duration::ZERO)
        .put("never", PutOptions::default())
        .await;
    assert!(
        matches!(
            refused,
            Err(Error::Command(CommandError::ZeroTimeout { which: "call" }))
        ),
        "{refused:?}"
    );
    assert!(other.is_open());
    assert_eq!(server.stats_counter("cmd-put"), 0);
    client.put("then", PutOptions::default()).await.unwrap();
    assert_eq!(server.stats_counter("cmd-put"), 1);
}

/// A handle outlives the runtime that runs its driver (a client kept in a
/// static, used by one test's runtime after another's): the call waiting
/// when that runtime shuts down, and every later call, fail at once rather
/// than wait for a driver that is gone.
#[test]
fn calls_fail_at_once_once_the_drivers_runtime_is_gone() {
    let server = Server::start();
    // Replies never come: only the driver's end can answer the call.
    let proxy = FaultProxy::start(
        &server.addr(),
        FaultPlan::new().stall_after(Direction::Downstream, 0),
    );
    let drivers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let options = Options::default().read_timeout(Duration::from_secs(30));
    let client = drivers
        .block_on(SharedClient::connect_with(&proxy.url(), options))
        .unwrap();
    let mut waiting = client.clone();
    let (answered, answer) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _ = answered.send(runtime.block_on(waiting.put("x", PutOptions::default())));
    });
    std::thread::sleep(Duration::from_millis(300));
    drop(drivers);
    let error = answer
        .recv_timeout(Duration::from_secs(2))
        .expect("the waiting call is answered once its driver is gone")
        .expect_err("no reply can come");
    assert!(error.is_connection_error(), "{error}");

    let mut later = client.clone();
    assert!(!later.is_open());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let error = runtime
        .block_on(later.put("y", PutOptions::default()))
        .expect_err("the driver is gone");
    assert!(error.is_connection_error(), "{error}");
}

/// A handle's own timeout bounds the whole call, sending included: unlike
/// the read timeout (and a `Client`'s `with_timeout`), it does not start
/// again while a large put is still leaving through a slow link, which the
/// rustdoc of `SharedClient::with_timeout` now says.
#[tokio::test]
async fn a_call_timeout_counts_while_the_put_still_leaves() {
    use beanstalk_test_support::conformance::{LARGE_JOB_LIMIT, slow_link_for_large_jobs};
    let (_server, proxy) = slow_link_for_large_jobs();
    let options = Options::default().max_job_size(LARGE_JOB_LIMIT);
    let mut client = SharedClient::connect_with(&proxy.url(), options)
        .await
        .unwrap();
    let body = vec![b'x'; 4 << 20];
    let started = std::time::Instant::now();
    let result = client
        .with_timeout(Duration::from_secs(1))
        .put(&body[..], PutOptions::default())
        .await;
    let waited = started.elapsed();
    assert!(
        matches!(result, Err(Error::Timeout(limit)) if limit == Duration::from_secs(1)),
        "{result:?} after {waited:?}"
    );
    assert!(waited < Duration::from_millis(1800), "{waited:?}");
}
