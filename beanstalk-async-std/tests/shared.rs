//! SharedClient on smol: many tasks on several threads pipelining on one
//! connection, per-handle tubes, refused reserves, and failures that reach
//! every call in flight.
#![cfg(feature = "smol")]

mod shared_adapter;

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use beanstalk_async_std::{
    AsyncCommands, CommandError, Error, Options, PutOptions, SharedClient, Tube,
};
use beanstalk_test_support::{Direction, FakePeer, FaultPlan, FaultProxy, Server};
use shared_adapter::Shared;
use smol::{Executor, Timer};

/// Runs `test` on an executor served by four threads, so handles really are
/// used from several threads at once.
fn on_threads<T: Send>(test: impl FnOnce(Arc<Executor<'static>>) -> T) -> T {
    let executor = Arc::new(Executor::new());
    let (stop, stopped) = smol::channel::unbounded::<()>();
    std::thread::scope(|scope| {
        for _ in 0..4 {
            let (executor, stopped) = (Arc::clone(&executor), stopped.clone());
            scope.spawn(move || smol::block_on(executor.run(stopped.recv())));
        }
        let result = test(Arc::clone(&executor));
        drop(stop);
        result
    })
}

beanstalk_test_support::shared_suite!(Shared, smol::block_on);

const TASKS: usize = 32;
const JOBS_PER_TASK: usize = 200;

fn tube(task: usize, half: usize) -> String {
    format!("task-{task}-half-{half}")
}

/// Each task puts half its jobs into one tube and half into another, its
/// `use`s interleaved with the other tasks' commands on one connection.
async fn put_jobs(mut client: SharedClient, task: usize) -> Vec<(u64, String)> {
    let mut jobs = Vec::with_capacity(JOBS_PER_TASK);
    for j in 0..JOBS_PER_TASK {
        let half = j * 2 / JOBS_PER_TASK;
        if j % (JOBS_PER_TASK / 2) == 0 {
            assert_eq!(
                client.use_tube(tube(task, half)).await.unwrap(),
                *tube(task, half)
            );
        }
        let body = format!("{task}:{j}");
        let receipt = client.put(body, PutOptions::default()).await.unwrap();
        jobs.push((receipt.id, tube(task, half)));
    }
    // A peek acts on this handle's tube too, whatever the others use.
    let first_of_second_half = client.peek_ready().await.unwrap().unwrap();
    assert_eq!(
        first_of_second_half.body,
        format!("{task}:{}", JOBS_PER_TASK / 2).as_bytes()
    );
    assert_eq!(client.list_tube_used().await.unwrap(), *tube(task, 1));
    jobs
}

#[test]
fn many_tasks_each_keep_their_own_tube() {
    let server = Server::start();
    on_threads(|executor| {
        smol::block_on(executor.run(async {
            let client = SharedClient::connect(&server.url()).await.unwrap();
            let tasks: Vec<_> = (0..TASKS)
                .map(|task| executor.spawn(put_jobs(client.clone(), task)))
                .collect();
            let mut all = Vec::new();
            for task in tasks {
                all.extend(task.await);
            }
            assert_eq!(all.len(), TASKS * JOBS_PER_TASK);

            // Every job is in the tube its task meant, checked per job and
            // per tube, again from many tasks at once.
            let checks: Vec<_> = all
                .chunks(JOBS_PER_TASK)
                .map(|jobs| {
                    let (mut client, jobs) = (client.clone(), jobs.to_vec());
                    executor.spawn(async move {
                        for (id, tube) in jobs {
                            assert_eq!(client.stats_job(id).await.unwrap().tube, *tube, "job {id}");
                        }
                    })
                })
                .collect();
            for check in checks {
                check.await;
            }
            let mut client = client.clone();
            for task in 0..TASKS {
                for half in 0..2 {
                    let stats = client.stats_tube(tube(task, half)).await.unwrap();
                    assert_eq!(stats.total_jobs, (JOBS_PER_TASK / 2) as u64);
                }
            }
            // The handle's tube is its own: this one never chose one.
            assert_eq!(client.tube(), &Tube::DEFAULT);
            assert_eq!(client.list_tube_used().await.unwrap(), "default");
        }));
    });
    assert_eq!(
        server.stats_counter("cmd-put"),
        (TASKS * JOBS_PER_TASK) as u64
    );
}

/// Every read of the driver is short when replies come a byte at a time,
/// so it yields to the callers after each, and callers' wakes alone must
/// not cost it a reply: every task gets its own receipts, in order.
#[test]
fn replies_dripped_a_byte_at_a_time_reach_every_task() {
    const TASKS: usize = 8;
    const JOBS: usize = 40;
    let server = Server::start();
    let proxy = FaultProxy::start(
        &server.addr(),
        FaultPlan::new().one_byte_chunks(Direction::Downstream),
    );
    on_threads(|executor| {
        smol::block_on(executor.run(async {
            let client = SharedClient::connect(&proxy.url()).await.unwrap();
            let tasks: Vec<_> = (0..TASKS)
                .map(|task| {
                    let mut client = client.clone();
                    executor.spawn(async move {
                        client.use_tube(format!("drip-{task}")).await.unwrap();
                        let mut ids = Vec::with_capacity(JOBS);
                        for job in 0..JOBS {
                            let body = format!("{task}:{job}");
                            ids.push(client.put(body, PutOptions::default()).await.unwrap().id);
                        }
                        for (job, id) in ids.iter().enumerate() {
                            let peeked = client.peek(*id).await.unwrap().unwrap();
                            assert_eq!(peeked.body, format!("{task}:{job}").as_bytes());
                        }
                        ids
                    })
                })
                .collect();
            let mut ids = Vec::new();
            for task in tasks {
                ids.extend(task.await);
            }
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), TASKS * JOBS, "every put got an id of its own");
        }));
    });
    assert_eq!(server.stats_counter("cmd-put"), (TASKS * JOBS) as u64);
}

#[test]
fn waiting_reserves_are_refused() {
    smol::block_on(async {
        let server = Server::start();
        let mut client = SharedClient::connect(&server.url()).await.unwrap();
        for refused in [
            client.reserve().await,
            client.reserve_with_timeout(1).await,
            client.with_timeout(Duration::from_secs(1)).reserve().await,
        ] {
            assert!(
                matches!(refused, Err(Error::Command(CommandError::WouldBlockShared))),
                "{refused:?}"
            );
        }
        assert!(
            client.is_open(),
            "refusing sends nothing and breaks nothing"
        );
        assert_eq!(server.stats_counter("cmd-reserve"), 0);
        assert_eq!(server.stats_counter("cmd-reserve-with-timeout"), 0);
        // Answered at once, so allowed.
        assert!(matches!(
            client.reserve_with_timeout(0).await,
            Err(Error::TimedOut)
        ));
        let id = client.put("x", PutOptions::default()).await.unwrap().id;
        assert_eq!(client.reserve_with_timeout(0).await.unwrap().id, id);
    });
}

/// A zero timeout is refused before anything is queued, also when the
/// options came through `with_driver`, which cannot fail: the connection
/// stays open for every handle, and no job was put.
#[test]
fn zero_timeouts_are_refused_before_anything_is_sent() {
    smol::block_on(async {
        let server = Server::start();
        let zero = Options::default().write_timeout(Duration::ZERO);
        let refused = SharedClient::connect_with(&server.url(), zero).await;
        assert!(
            matches!(
                refused,
                Err(Error::Command(CommandError::ZeroTimeout { which: "write" }))
            ),
            "{:?}",
            refused.err()
        );
        let stream = smol::net::TcpStream::connect(server.tcp_addr())
            .await
            .unwrap();
        let (mut client, driver) = SharedClient::with_driver(stream, zero);
        let driving = smol::spawn(driver);
        let refused = client.put("never", PutOptions::default()).await;
        assert!(
            matches!(
                refused,
                Err(Error::Command(CommandError::ZeroTimeout { which: "write" }))
            ),
            "{refused:?}"
        );
        drop(client);
        driving.await;

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
    });
}

/// A peer that reads commands and never answers; counts the lines it got.
fn silent_peer() -> (FakePeer, Arc<AtomicUsize>) {
    let lines = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&lines);
    let peer = FakePeer::start(move |stream| {
        let mut buf = [0u8; 1024];
        while let Ok(n) = stream.read(&mut buf) {
            if n == 0 {
                break;
            }
            let newlines = buf[..n].iter().filter(|&&b| b == b'\n').count();
            counter.fetch_add(newlines, Ordering::SeqCst);
        }
    });
    (peer, lines)
}

#[test]
fn a_timeout_closes_the_connection_for_every_call_in_flight() {
    smol::block_on(async {
        let (peer, lines) = silent_peer();
        let client = SharedClient::connect(&peer.url()).await.unwrap();

        // Two calls with the default 5 s read timeout wait for replies that
        // will not come...
        let mut a = client.clone();
        let put = smol::spawn(async move { a.put("lost?", PutOptions::default()).await });
        let mut b = client.clone();
        let stats = smol::spawn(async move { b.stats().await });
        let started = Instant::now();
        // (`put` is a line and a body line, `stats` one more.)
        while lines.load(Ordering::SeqCst) < 3 {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "commands never arrived"
            );
            Timer::after(Duration::from_millis(5)).await;
        }
        // ...and a third gives up after 200 ms.
        let started = Instant::now();
        let mut c = client.clone();
        let timed_out = c
            .with_timeout(Duration::from_millis(200))
            .list_tubes()
            .await;
        assert!(matches!(timed_out, Err(Error::Timeout(_))), "{timed_out:?}");
        assert!(!client.is_open());

        // The other two fail at once rather than after their own 5 s.
        let put = put.await.unwrap_err();
        assert!(put.outcome_unknown(), "a put cut off may exist: {put}");
        let stats = stats.await.unwrap_err();
        assert!(matches!(stats, Error::Protocol(_)), "{stats}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert!(matches!(
            c.stats().await,
            Err(Error::Command(CommandError::Broken(_)))
        ));
    });
}

/// Without a one-call override, the driver's one deadline for the oldest
/// reply fails the connection: that call gets the timeout, the others the
/// broken connection, all within the read timeout and a margin.
#[test]
fn a_late_reply_fails_every_call_after_the_read_timeout() {
    smol::block_on(async {
        let (peer, _lines) = silent_peer();
        let options = Options::default().read_timeout(Duration::from_millis(300));
        let client = SharedClient::connect_with(&peer.url(), options)
            .await
            .unwrap();
        let started = Instant::now();
        let calls: Vec<_> = (0..5)
            .map(|i| {
                let mut handle = client.clone();
                smol::spawn(
                    async move { handle.put(format!("job {i}"), PutOptions::default()).await },
                )
            })
            .collect();
        let mut timeouts = 0;
        for call in calls {
            let error = call.await.unwrap_err();
            assert!(error.outcome_unknown(), "{error}");
            timeouts += usize::from(matches!(error, Error::Timeout(_)));
        }
        assert_eq!(timeouts, 1);
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(290) && waited < Duration::from_millis(1300),
            "{waited:?}"
        );
        assert!(!client.is_open());
    });
}

#[test]
fn dropped_calls_are_answered_in_order() {
    smol::block_on(async {
        let server = Server::start();
        let mut client = SharedClient::connect(&server.url()).await.unwrap();
        let mut dropped = 0;
        for i in 0..500u64 {
            // Dropped after its first poll, so written but not awaited (unless
            // this thread was descheduled long enough for the reply to come).
            let outcome = smol::future::or(
                async {
                    Some(
                        client
                            .put(format!("dropped {i}"), PutOptions::default())
                            .await,
                    )
                },
                async { None },
            )
            .await;
            dropped += usize::from(outcome.is_none());
            let receipt = client
                .put(format!("kept {i}"), PutOptions::default())
                .await
                .unwrap();
            let job = client.peek(receipt.id).await.unwrap().unwrap();
            assert_eq!(job.body, format!("kept {i}").as_bytes());
        }
        assert!(dropped > 250, "only {dropped} calls were dropped");
        assert!(client.is_open());
        assert_eq!(client.stats().await.unwrap().cmd_put, 1000);
    });
}

#[test]
fn quit_closes_for_every_handle() {
    smol::block_on(async {
        let server = Server::start();
        let mut client = SharedClient::connect(&server.url()).await.unwrap();
        let mut other = client.clone();
        client.put("q", PutOptions::default()).await.unwrap();
        client.quit().await.unwrap();
        assert!(!client.is_open() && !other.is_open());
        assert!(matches!(
            other.stats().await,
            Err(Error::Command(CommandError::Closed))
        ));
    });
}

#[test]
fn dropping_every_handle_closes_the_connection() {
    smol::block_on(async {
        let server = Server::start();
        let options = Options::default().read_timeout(Duration::from_secs(1));
        let client = SharedClient::connect_with(&server.url(), options)
            .await
            .unwrap();
        let mut handle = client.clone();
        // A put whose reply nobody waits for still lands before the close.
        let _ = smol::future::or(
            async { Some(handle.put("last words", PutOptions::default()).await) },
            async { None },
        )
        .await;
        // The stats helper's own connection counts as one.
        assert_eq!(server.stats_counter("current-connections"), 2);
        drop((client, handle));
        let started = Instant::now();
        while server.stats_counter("current-connections") > 1 {
            assert!(
                started.elapsed() < Duration::from_secs(3),
                "the driver kept the connection"
            );
            Timer::after(Duration::from_millis(20)).await;
        }
        assert_eq!(server.stats_counter("cmd-put"), 1);
    });
}

#[test]
fn a_dropped_driver_fails_its_calls() {
    smol::block_on(async {
        let server = Server::start();
        let stream = smol::net::TcpStream::connect(server.tcp_addr())
            .await
            .unwrap();
        let (mut client, driver) = SharedClient::with_driver(stream, Options::default());
        drop(driver);
        let started = Instant::now();
        assert!(matches!(
            client.stats().await,
            Err(Error::Command(CommandError::Broken(_)))
        ));
        assert!(started.elapsed() < Duration::from_secs(1));
        assert!(!client.is_open());
    });
}

/// Timeouts past what the clock can hold mean no timeout: the driver
/// neither panics on the deadline arithmetic nor expires.
#[test]
fn unbounded_timeouts_mean_no_deadline() {
    smol::block_on(async {
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
    });
}
