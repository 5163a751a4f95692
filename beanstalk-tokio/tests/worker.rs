//! The worker pool against real servers: exactly-once processing without
//! faults, touching, failure policy, graceful shutdown, and surviving
//! restarts and cut connections.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use beanstalk_test_support::{FaultPlan, FaultProxy, Server};
use beanstalk_tokio::proto::retry::Backoff;
use beanstalk_tokio::proto::stats::JobState;
use beanstalk_tokio::worker::{CounterSnapshot, Counters, Outcome, Shutdown, Worker, WorkerJob};
use beanstalk_tokio::{AsyncCommands, Client, Error, PutOptions};
use tokio::task::JoinHandle;

/// Waits up to `limit` for the counters to satisfy `done`.
async fn wait_for(counters: &Counters, limit: Duration, done: impl Fn(&CounterSnapshot) -> bool) {
    let deadline = Instant::now() + limit;
    loop {
        let now = counters.snapshot();
        if done(&now) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out; counters: {now:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn producer(url: &str, tube: &str) -> Client {
    let mut client = Client::connect(url).await.unwrap();
    client.use_tube(tube).await.unwrap();
    client
}

fn fast_reconnect() -> Backoff {
    Backoff::new(Duration::from_millis(5), Duration::from_millis(100))
}

/// N jobs, a pool of M: each job is handled exactly once, never more than M
/// at a time, and the server agrees that all were deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_handles_each_job_exactly_once() {
    const JOBS: u64 = 300;
    const SLOTS: usize = 4;
    let server = Server::start();
    let mut put = producer(&server.url(), "pool").await;
    let mut bodies = HashMap::new();
    for i in 0..JOBS {
        let receipt = put
            .put(format!("job-{i}"), PutOptions::default())
            .await
            .unwrap();
        bodies.insert(receipt.id, format!("job-{i}"));
    }

    let seen = Arc::new(Mutex::new(HashMap::<u64, u32>::new()));
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let worker = Worker::builder(&server.url())
        .tube("pool")
        .concurrency(SLOTS)
        .build()
        .unwrap();
    let counters = worker.counters();
    let shutdown = Shutdown::new();
    let started = Instant::now();
    let run: JoinHandle<CounterSnapshot> = tokio::spawn(worker.run(
        {
            let (seen, running, most) = (seen.clone(), running.clone(), most.clone());
            move |job: WorkerJob| {
                let (seen, running, most) = (seen.clone(), running.clone(), most.clone());
                async move {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    assert_eq!(job.tube(), "pool");
                    assert_eq!(job.attempt(), 1);
                    *seen.lock().unwrap().entry(job.id()).or_default() += 1;
                    tokio::time::sleep(Duration::from_millis(1 + job.id() % 3)).await;
                    running.fetch_sub(1, Ordering::SeqCst);
                    Ok::<(), String>(())
                }
            }
        },
        shutdown.clone(),
    ));
    wait_for(&counters, Duration::from_secs(8), |c| c.succeeded == JOBS).await;
    let elapsed = started.elapsed();
    shutdown.trigger();
    let totals = run.await.unwrap();
    println!("{JOBS} jobs, {SLOTS} slots: {elapsed:?}; {totals:?}");

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len() as u64, JOBS);
    assert!(seen.values().all(|&n| n == 1), "a job was handled twice");
    assert!(seen.keys().all(|id| bodies.contains_key(id)));
    assert_eq!(
        most.load(Ordering::SeqCst),
        SLOTS,
        "concurrency is the slot count"
    );
    assert_eq!((totals.reserved, totals.succeeded), (JOBS, JOBS));
    assert_eq!(
        (totals.failed, totals.released, totals.buried, totals.lost),
        (0, 0, 0, 0)
    );
    assert_eq!(totals.reconnects, 0);
    let stats = put.stats_tube("pool").await.unwrap();
    assert_eq!(stats.current_jobs_ready + stats.current_jobs_reserved, 0);
    assert_eq!(server.stats_counter("cmd-delete"), JOBS);
}

/// A handler that takes more than twice the TTR keeps its job, because the
/// worker touches it: nobody else can reserve it meanwhile, and the server
/// never timed it out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_handler_keeps_its_job_by_touching() {
    let server = Server::start();
    let mut put = producer(&server.url(), "slow").await;
    let job = put.put("slow", PutOptions::default().ttr(2)).await.unwrap();
    let worker = Worker::builder(&server.url()).tube("slow").build().unwrap();
    let counters = worker.counters();
    let shutdown = Shutdown::new();
    let run = tokio::spawn(worker.run(
        |_job: WorkerJob| async {
            tokio::time::sleep(Duration::from_millis(4500)).await;
            Ok::<(), String>(())
        },
        shutdown.clone(),
    ));
    wait_for(&counters, Duration::from_secs(2), |c| c.reserved == 1).await;

    // Another consumer waits for it through more than two TTRs: in vain.
    let mut thief = Client::connect(&server.url()).await.unwrap();
    thief.watch("slow").await.unwrap();
    let stolen = thief.reserve_with_timeout(4).await;
    assert!(matches!(stolen, Err(Error::TimedOut)), "{stolen:?}");

    wait_for(&counters, Duration::from_secs(3), |c| c.succeeded == 1).await;
    shutdown.trigger();
    let totals = run.await.unwrap();
    println!("{totals:?}");
    // 4.5 s at one touch every 2/3 s.
    assert!(totals.touched >= 5, "{totals:?}");
    assert_eq!((totals.lost, totals.released), (0, 0));
    assert!(
        thief.peek(job.id).await.unwrap().is_none(),
        "deleted by the worker"
    );
}

/// The control for the test above: without touching, the same handler
/// loses its job to another consumer when the TTR runs out, and the worker
/// counts it as lost instead of deleting someone else's job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_touching_a_slow_handler_loses_its_job() {
    let server = Server::start();
    let mut put = producer(&server.url(), "slow").await;
    // TTR 2 s, handler 3 s: the job times out at 2 s, the thief holds it
    // from then until 4 s, and the worker's delete at 3 s must not take it.
    let job = put.put("slow", PutOptions::default().ttr(2)).await.unwrap();
    let worker = Worker::builder(&server.url())
        .tube("slow")
        .auto_touch(false)
        .build()
        .unwrap();
    let counters = worker.counters();
    let shutdown = Shutdown::new();
    let run = tokio::spawn(worker.run(
        |_job: WorkerJob| async {
            tokio::time::sleep(Duration::from_millis(3000)).await;
            Ok::<(), String>(())
        },
        shutdown.clone(),
    ));
    wait_for(&counters, Duration::from_secs(2), |c| c.reserved == 1).await;
    let mut thief = Client::connect(&server.url()).await.unwrap();
    thief.watch("slow").await.unwrap();
    let stolen = match thief.reserve_with_timeout(4).await {
        Ok(stolen) => stolen,
        Err(error) => panic!(
            "the job did not come back after its TTR: {error:?}; worker {:?}; job {:?}",
            counters.snapshot(),
            put.stats_job(job.id).await
        ),
    };
    assert_eq!(stolen.id, job.id);
    wait_for(&counters, Duration::from_secs(3), |c| c.lost == 1).await;
    shutdown.trigger();
    let totals = run.await.unwrap();
    assert_eq!((totals.succeeded, totals.touched), (0, 0));
    // The thief still holds it: the worker's late delete did not remove it.
    thief.delete(stolen.id).await.unwrap();
}

/// Failures: released with a delay that grows with the job's `releases`,
/// then buried at the last attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_job_is_released_with_backoff_then_buried() {
    let server = Server::start();
    let mut put = producer(&server.url(), "fail").await;
    let job = put.put("doomed", PutOptions::default()).await.unwrap();
    let tries = Arc::new(Mutex::new(Vec::new()));
    let worker = Worker::builder(&server.url())
        .tube("fail")
        .max_attempts(3)
        .release_backoff(Backoff::new(
            Duration::from_secs(1),
            Duration::from_secs(10),
        ))
        .build()
        .unwrap();
    let counters = worker.counters();
    let shutdown = Shutdown::new();
    let run = tokio::spawn(worker.run(
        {
            let tries = tries.clone();
            move |job: WorkerJob| {
                let tries = tries.clone();
                async move {
                    let stats = job.stats();
                    tries.lock().unwrap().push((
                        job.attempt(),
                        stats.releases,
                        stats.delay,
                        Instant::now(),
                    ));
                    Err::<(), _>("always fails")
                }
            }
        },
        shutdown.clone(),
    ));
    wait_for(&counters, Duration::from_secs(6), |c| c.buried == 1).await;
    shutdown.trigger();
    let totals = run.await.unwrap();
    assert_eq!((totals.reserved, totals.failed), (3, 3));
    assert_eq!(
        (totals.released, totals.buried, totals.succeeded),
        (2, 1, 0)
    );

    let tries = tries.lock().unwrap().clone();
    let seen: Vec<_> = tries.iter().map(|t| (t.0, t.1, t.2)).collect();
    // (attempt, releases so far, delay of the last release)
    assert_eq!(seen, [(1, 0, 0), (2, 1, 1), (3, 2, 2)]);
    assert!(tries[1].3 - tries[0].3 >= Duration::from_millis(900));
    assert!(tries[2].3 - tries[1].3 >= Duration::from_millis(1900));
    let stats = put.stats_job(job.id).await.unwrap();
    assert_eq!((stats.releases, stats.buries), (2, 1));
    assert_eq!(put.stats_tube("fail").await.unwrap().current_jobs_buried, 1);
}

/// The handler chooses: delete, release, bury; a panic counts as a failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_chooses_the_outcome() {
    let server = Server::start();
    let mut put = producer(&server.url(), "choose").await;
    for body in ["delete", "bury", "release-once", "panic"] {
        put.put(body, PutOptions::default()).await.unwrap();
    }
    let worker = Worker::builder(&server.url())
        .tube("choose")
        .concurrency(2)
        .max_attempts(1) // a failure buries at once
        .build()
        .unwrap();
    let counters = worker.counters();
    let shutdown = Shutdown::new();
    let run = tokio::spawn(worker.run(
        |job: WorkerJob| async move {
            match &job.body()[..] {
                b"bury" => Ok(Outcome::Bury),
                b"release-once" if job.attempt() == 1 => Ok(Outcome::release(Duration::ZERO)),
                b"panic" => panic!("handler bug"),
                _ => Ok::<_, String>(Outcome::Delete),
            }
        },
        shutdown.clone(),
    ));
    wait_for(&counters, Duration::from_secs(5), |c| {
        c.succeeded == 2 && c.buried == 2
    })
    .await;
    shutdown.trigger();
    let totals = run.await.unwrap();
    assert_eq!((totals.reserved, totals.released, totals.failed), (5, 1, 1));
    let stats = put.stats_tube("choose").await.unwrap();
    assert_eq!(
        (stats.current_jobs_buried, stats.current_jobs_ready),
        (2, 0)
    );
}

/// Shutdown with handlers in flight past the grace period: they are
/// cancelled, their jobs released, and the server has every job back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_releases_jobs_still_running_after_the_grace_period() {
    let server = Server::start();
    let mut put = producer(&server.url(), "stop").await;
    for i in 0..6 {
        put.put(format!("{i}"), PutOptions::default())
            .await
            .unwrap();
    }
    let worker = Worker::builder(&server.url())
        .tube("stop")
        .concurrency(3)
        .shutdown_grace(Duration::from_millis(300))
        .build()
        .unwrap();
    let counters = worker.counters();
    let shutdown = Shutdown::new();
    let run = tokio::spawn(worker.run(
        |_job: WorkerJob| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok::<(), String>(())
        },
        shutdown.clone(),
    ));
    wait_for(&counters, Duration::from_secs(2), |c| c.reserved == 3).await;
    let triggered = Instant::now();
    shutdown.trigger();
    let totals = run.await.unwrap();
    let took = triggered.elapsed();
    println!("stopped in {took:?}: {totals:?}");
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert_eq!(
        (
            totals.reserved,
            totals.released,
            totals.succeeded,
            totals.lost
        ),
        (3, 3, 0, 0)
    );
    let stats = put.stats_tube("stop").await.unwrap();
    assert_eq!(
        (stats.current_jobs_ready, stats.current_jobs_reserved),
        (6, 0)
    );
    assert_eq!(server.stats_counter("cmd-release"), 3);
}

/// Shutdown with handlers that finish within the grace period: they are
/// completed and deleted; nothing else is reserved after the signal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_in_flight_handlers_finish() {
    let server = Server::start();
    let mut put = producer(&server.url(), "finish").await;
    for i in 0..10 {
        put.put(format!("{i}"), PutOptions::default())
            .await
            .unwrap();
    }
    let worker = Worker::builder(&server.url())
        .tube("finish")
        .concurrency(3)
        .shutdown_grace(Duration::from_secs(5))
        .build()
        .unwrap();
    let counters = worker.counters();
    let shutdown = Shutdown::new();
    let run = tokio::spawn(worker.run(
        |_job: WorkerJob| async {
            tokio::time::sleep(Duration::from_millis(400)).await;
            Ok::<(), String>(())
        },
        shutdown.clone(),
    ));
    wait_for(&counters, Duration::from_secs(2), |c| c.reserved == 3).await;
    shutdown.trigger();
    let totals = run.await.unwrap();
    assert_eq!(
        (totals.reserved, totals.succeeded, totals.released),
        (3, 3, 0)
    );
    let stats = put.stats_tube("finish").await.unwrap();
    assert_eq!(
        (stats.current_jobs_ready, stats.current_jobs_reserved),
        (7, 0)
    );
    assert_eq!(server.stats_counter("cmd-delete"), 3);
}

/// Shutdown while slots wait in `reserve`: it is immediate, and a job put
/// at the same moment is never lost: it was handled, or it is still ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_cancels_idle_reserves_without_losing_a_job() {
    let server = Server::start();
    let mut put = producer(&server.url(), "idle").await;
    let mut handled = 0;
    for round in 0..20u64 {
        let worker = Worker::builder(&server.url())
            .tube("idle")
            .concurrency(2)
            .build()
            .unwrap();
        let counters = worker.counters();
        let shutdown = Shutdown::new();
        let run = tokio::spawn(worker.run(
            |_job: WorkerJob| async { Ok::<(), String>(()) },
            shutdown.clone(),
        ));
        // Let the slots reach their reserve, then race a put with the signal.
        tokio::time::sleep(Duration::from_millis(5 + round % 5)).await;
        let job = put.put("racing", PutOptions::default()).await.unwrap();
        if round % 2 == 0 {
            tokio::task::yield_now().await;
        }
        let triggered = Instant::now();
        shutdown.trigger();
        let totals = tokio::time::timeout(Duration::from_secs(2), run)
            .await
            .expect("shutdown of idle slots is immediate")
            .unwrap();
        assert!(triggered.elapsed() < Duration::from_millis(500));
        assert_eq!(counters.snapshot(), totals);
        if totals.succeeded == 1 {
            assert!(matches!(put.stats_job(job.id).await, Err(Error::NotFound)));
            handled += 1;
            continue;
        }
        assert_eq!(totals.succeeded, 0);
        // The server notices the closed connections a moment later and
        // releases a job one of them had been handed.
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            let stats = put.stats_job(job.id).await.unwrap();
            if stats.state == JobState::Ready {
                break;
            }
            assert!(Instant::now() < deadline, "round {round}: {stats:?}");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        put.delete(job.id).await.unwrap();
    }
    println!("{handled} of 20 racing jobs were handled before the shutdown");
}

/// The server is killed and restarted (same binlog) mid-run: the worker
/// keeps running, reconnects, and consumes every job, old and new.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_survives_a_server_restart() {
    let mut server = Server::builder().binlog_temp().fsync_never().start();
    let mut put = producer(&server.url(), "restart").await;
    for i in 0..100 {
        put.put(format!("old-{i}"), PutOptions::default())
            .await
            .unwrap();
    }
    let handled = Arc::new(Mutex::new(HashMap::<String, u32>::new()));
    let worker = Worker::builder(&server.url())
        .tube("restart")
        .concurrency(3)
        .reconnect_backoff(fast_reconnect())
        .build()
        .unwrap();
    let counters = worker.counters();
    let shutdown = Shutdown::new();
    let run = tokio::spawn(worker.run(
        {
            let handled = handled.clone();
            move |job: WorkerJob| {
                let handled = handled.clone();
                async move {
                    let body = String::from_utf8(job.body().to_vec()).unwrap();
                    *handled.lock().unwrap().entry(body).or_default() += 1;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    Ok::<(), String>(())
                }
            }
        },
        shutdown.clone(),
    ));
    wait_for(&counters, Duration::from_secs(5), |c| c.succeeded >= 30).await;
    server.kill9();
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.restart();
    let mut put = producer(&server.url(), "restart").await;
    for i in 0..100 {
        put.put(format!("new-{i}"), PutOptions::default())
            .await
            .unwrap();
    }
    let everything = |handled: &HashMap<String, u32>| {
        (0..100).all(|i| {
            handled.contains_key(&format!("old-{i}")) && handled.contains_key(&format!("new-{i}"))
        })
    };
    let deadline = Instant::now() + Duration::from_secs(8);
    while !everything(&handled.lock().unwrap()) {
        assert!(
            Instant::now() < deadline,
            "not consumed after the restart: {:?}",
            counters.snapshot()
        );
        assert!(!run.is_finished(), "the worker stopped");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Drained: nothing left ready or reserved.
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let stats = put.stats_tube("restart").await.unwrap();
        if stats.current_jobs_ready + stats.current_jobs_reserved == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{stats:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    shutdown.trigger();
    let totals = run.await.unwrap();
    println!("{totals:?}");
    assert_eq!(totals.reconnects, 3, "each slot reconnected once");
    // A job being handled at the kill came back ready and ran again; a
    // delete that never reached the server means the same.
    let repeats: u32 = handled.lock().unwrap().values().map(|n| n - 1).sum();
    assert!(repeats <= 3, "{repeats} repeats, {totals:?}");
}

/// A connection cut while the slots wait in `reserve`: they reconnect,
/// restore their watch list, and go on consuming.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_connections_during_reserve_are_replaced() {
    let server = Server::start();
    let proxy = FaultProxy::start(&server.addr(), FaultPlan::new());
    let worker = Worker::builder(&proxy.url())
        .tubes(["a", "b"])
        .concurrency(2)
        .reconnect_backoff(fast_reconnect())
        .build()
        .unwrap();
    let counters = worker.counters();
    let shutdown = Shutdown::new();
    let run = tokio::spawn(worker.run(
        |_job: WorkerJob| async { Ok::<(), String>(()) },
        shutdown.clone(),
    ));
    let waiting = || server.stats_counter("current-waiting") == 2;
    let deadline = Instant::now() + Duration::from_secs(3);
    while !waiting() {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    proxy.cut_all();
    let mut put_a = producer(&server.url(), "a").await;
    let mut put_b = producer(&server.url(), "b").await;
    for _ in 0..5 {
        put_a.put("a", PutOptions::default()).await.unwrap();
        put_b.put("b", PutOptions::default()).await.unwrap();
    }
    wait_for(&counters, Duration::from_secs(3), |c| c.succeeded == 10).await;
    shutdown.trigger();
    let totals = run.await.unwrap();
    assert_eq!(totals.reconnects, 2);
    assert_eq!(proxy.connections(), 4);
    assert_eq!(server.stats_counter("current-jobs-ready"), 0);
}

/// A draining server still hands out and deletes jobs: the worker keeps
/// consuming and does not reconnect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_keeps_consuming_from_a_draining_server() {
    let server = Server::start();
    let mut put = producer(&server.url(), "drain").await;
    for _ in 0..20 {
        put.put("x", PutOptions::default()).await.unwrap();
    }
    server.drain();
    let worker = Worker::builder(&server.url())
        .tube("drain")
        .concurrency(2)
        .build()
        .unwrap();
    let counters = worker.counters();
    let shutdown = Shutdown::new();
    let run = tokio::spawn(worker.run(
        |_job: WorkerJob| async { Ok::<(), String>(()) },
        shutdown.clone(),
    ));
    wait_for(&counters, Duration::from_secs(3), |c| c.succeeded == 20).await;
    shutdown.trigger();
    let totals = run.await.unwrap();
    assert_eq!((totals.reconnects, totals.lost), (0, 0));
    assert!(matches!(
        put.put("y", PutOptions::default()).await,
        Err(Error::Draining)
    ));
}
