//! The worker pool on smol and async-std against real servers: exactly-once
//! processing, touching, the handler's outcomes and panics, graceful
//! shutdown, and surviving a restart. (The core's slot loop is the same as
//! tokio's, whose suite covers the remaining faults.)
#![cfg(all(feature = "smol", feature = "async-std"))]

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use beanstalk_async_std::proto::retry::Backoff;
use beanstalk_async_std::proto::stats::JobState;
use beanstalk_async_std::worker::{
    CounterSnapshot, Counters, Outcome, Shutdown, Worker, WorkerJob,
};
use beanstalk_async_std::{AsyncCommands, Client, Error, PutOptions};
use beanstalk_test_support::Server;
use smol::Timer;

/// Waits up to `limit` for the counters to satisfy `done`.
async fn wait_for(counters: &Counters, limit: Duration, done: impl Fn(&CounterSnapshot) -> bool) {
    let deadline = Instant::now() + limit;
    loop {
        let now = counters.snapshot();
        if done(&now) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out; counters: {now:?}");
        Timer::after(Duration::from_millis(5)).await;
    }
}

async fn producer(url: &str, tube: &str) -> Client {
    let mut client = Client::connect(url).await.unwrap();
    client.use_tube(tube).await.unwrap();
    client
}

/// Runs the worker and `drive` side by side until both are done: `drive`
/// triggers the shutdown, the worker returns its totals.
async fn alongside<D: Future<Output = ()>>(
    worker: impl Future<Output = CounterSnapshot>,
    drive: D,
) -> CounterSnapshot {
    smol::future::zip(worker, drive).await.0
}

/// N jobs, a pool of M: each job is handled exactly once, never more than M
/// at a time, and the server agrees that all were deleted.
async fn each_job_exactly_once() {
    const JOBS: u64 = 200;
    const SLOTS: usize = 4;
    let server = Server::start();
    let mut put = producer(&server.url(), "pool").await;
    for i in 0..JOBS {
        put.put(format!("job-{i}"), PutOptions::default())
            .await
            .unwrap();
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
    let handler = {
        let (seen, running, most) = (seen.clone(), running.clone(), most.clone());
        move |job: WorkerJob| {
            let (seen, running, most) = (seen.clone(), running.clone(), most.clone());
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                assert_eq!((job.tube(), job.attempt()), ("pool", 1));
                *seen.lock().unwrap().entry(job.id()).or_default() += 1;
                Timer::after(Duration::from_millis(1 + job.id() % 3)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                Ok::<(), String>(())
            }
        }
    };
    let totals = alongside(worker.run(handler, shutdown.clone()), async {
        wait_for(&counters, Duration::from_secs(8), |c| c.succeeded == JOBS).await;
        shutdown.trigger();
    })
    .await;

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len() as u64, JOBS);
    assert!(seen.values().all(|&n| n == 1), "a job was handled twice");
    assert_eq!(
        most.load(Ordering::SeqCst),
        SLOTS,
        "concurrency is the slot count"
    );
    assert_eq!((totals.reserved, totals.succeeded), (JOBS, JOBS));
    assert_eq!((totals.failed, totals.released, totals.lost), (0, 0, 0));
    let stats = put.stats_tube("pool").await.unwrap();
    assert_eq!(stats.current_jobs_ready + stats.current_jobs_reserved, 0);
    assert_eq!(server.stats_counter("cmd-delete"), JOBS);
}

#[test]
fn pool_handles_each_job_exactly_once_on_smol() {
    smol::block_on(each_job_exactly_once());
}

#[test]
fn pool_handles_each_job_exactly_once_on_async_std() {
    async_std::task::block_on(each_job_exactly_once());
}

/// A handler that takes more than twice the TTR keeps its job, because the
/// worker touches it: another consumer waits for it in vain.
#[test]
fn slow_handler_keeps_its_job_by_touching() {
    smol::block_on(async {
        let server = Server::start();
        let mut put = producer(&server.url(), "slow").await;
        let job = put.put("slow", PutOptions::default().ttr(2)).await.unwrap();
        let worker = Worker::builder(&server.url()).tube("slow").build().unwrap();
        let counters = worker.counters();
        let shutdown = Shutdown::new();
        let handler = |_job: WorkerJob| async {
            Timer::after(Duration::from_millis(4500)).await;
            Ok::<(), String>(())
        };
        let totals = alongside(worker.run(handler, shutdown.clone()), async {
            wait_for(&counters, Duration::from_secs(2), |c| c.reserved == 1).await;
            let mut thief = Client::connect(&server.url()).await.unwrap();
            thief.watch("slow").await.unwrap();
            let stolen = thief.reserve_with_timeout(4).await;
            assert!(matches!(stolen, Err(Error::TimedOut)), "{stolen:?}");
            wait_for(&counters, Duration::from_secs(3), |c| c.succeeded == 1).await;
            shutdown.trigger();
        })
        .await;
        // 4.5 s at one touch every 2/3 s.
        assert!(totals.touched >= 5, "{totals:?}");
        assert_eq!((totals.lost, totals.released), (0, 0));
        assert!(
            put.peek(job.id).await.unwrap().is_none(),
            "deleted by the worker"
        );
    });
}

/// The handler chooses: delete, release, bury; a panic counts as a failure
/// (buried here, after one attempt) and the worker goes on.
#[test]
fn handler_chooses_the_outcome_and_survives_a_panic() {
    smol::block_on(async {
        let server = Server::start();
        let mut put = producer(&server.url(), "choose").await;
        for body in ["delete", "bury", "release-once", "panic"] {
            put.put(body, PutOptions::default()).await.unwrap();
        }
        let worker = Worker::builder(&server.url())
            .tube("choose")
            .concurrency(2)
            .max_attempts(1)
            .build()
            .unwrap();
        let counters = worker.counters();
        let shutdown = Shutdown::new();
        let handler = |job: WorkerJob| async move {
            match &job.body()[..] {
                b"bury" => Ok(Outcome::Bury),
                b"release-once" if job.attempt() == 1 => Ok(Outcome::release(Duration::ZERO)),
                b"panic" => panic!("handler bug"),
                _ => Ok::<_, String>(Outcome::Delete),
            }
        };
        let totals = alongside(worker.run(handler, shutdown.clone()), async {
            wait_for(&counters, Duration::from_secs(5), |c| {
                c.succeeded == 2 && c.buried == 2
            })
            .await;
            shutdown.trigger();
        })
        .await;
        assert_eq!((totals.reserved, totals.released, totals.failed), (5, 1, 1));
        let stats = put.stats_tube("choose").await.unwrap();
        assert_eq!(
            (stats.current_jobs_buried, stats.current_jobs_ready),
            (2, 0)
        );
    });
}

/// Shutdown with handlers still running after the grace period: they are
/// cancelled and their jobs released; the server has every job back.
#[test]
fn shutdown_releases_jobs_still_running_after_the_grace_period() {
    smol::block_on(async {
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
        let handler = |_job: WorkerJob| async {
            Timer::after(Duration::from_secs(30)).await;
            Ok::<(), String>(())
        };
        let triggered = Arc::new(Mutex::new(None));
        let totals = alongside(worker.run(handler, shutdown.clone()), async {
            wait_for(&counters, Duration::from_secs(2), |c| c.reserved == 3).await;
            *triggered.lock().unwrap() = Some(Instant::now());
            shutdown.trigger();
        })
        .await;
        let took = triggered.lock().unwrap().unwrap().elapsed();
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
    });
}

/// Shutdown while slots wait in `reserve`: it is immediate, and a job put
/// at the same moment is never lost: it was handled, or it is ready again.
#[test]
fn shutdown_cancels_idle_reserves_without_losing_a_job() {
    smol::block_on(async {
        let server = Server::start();
        let mut put = producer(&server.url(), "idle").await;
        for round in 0..20u64 {
            let worker = Worker::builder(&server.url())
                .tube("idle")
                .concurrency(2)
                .build()
                .unwrap();
            let counters = worker.counters();
            let shutdown = Shutdown::new();
            let handler = |_job: WorkerJob| async { Ok::<(), String>(()) };
            let job = Arc::new(Mutex::new(None));
            let triggered = Arc::new(Mutex::new(None));
            let totals = alongside(worker.run(handler, shutdown.clone()), async {
                // Let the slots reach their reserve, then race a put with
                // the signal.
                Timer::after(Duration::from_millis(5 + round % 5)).await;
                let mut racer = producer(&server.url(), "idle").await;
                *job.lock().unwrap() =
                    Some(racer.put("racing", PutOptions::default()).await.unwrap());
                *triggered.lock().unwrap() = Some(Instant::now());
                shutdown.trigger();
            })
            .await;
            let took = triggered.lock().unwrap().unwrap().elapsed();
            assert!(took < Duration::from_millis(500), "round {round}: {took:?}");
            assert_eq!(counters.snapshot(), totals);
            let job = job.lock().unwrap().unwrap();
            if totals.succeeded == 1 {
                assert!(matches!(put.stats_job(job.id).await, Err(Error::NotFound)));
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
                Timer::after(Duration::from_millis(2)).await;
            }
            put.delete(job.id).await.unwrap();
        }
    });
}

/// kill -9 and a restart mid-run: the worker keeps running, reconnects
/// each slot once, and consumes the jobs from before and after.
#[test]
fn worker_survives_a_server_restart() {
    smol::block_on(async {
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
            .reconnect_backoff(Backoff::new(
                Duration::from_millis(5),
                Duration::from_millis(100),
            ))
            .build()
            .unwrap();
        let counters = worker.counters();
        let shutdown = Shutdown::new();
        let handler = {
            let handled = handled.clone();
            move |job: WorkerJob| {
                let handled = handled.clone();
                async move {
                    let body = String::from_utf8(job.body().to_vec()).unwrap();
                    *handled.lock().unwrap().entry(body).or_default() += 1;
                    Timer::after(Duration::from_millis(5)).await;
                    Ok::<(), String>(())
                }
            }
        };
        let totals = alongside(worker.run(handler, shutdown.clone()), async {
            wait_for(&counters, Duration::from_secs(5), |c| c.succeeded >= 30).await;
            server.kill9();
            Timer::after(Duration::from_millis(100)).await;
            server.restart();
            let mut put = producer(&server.url(), "restart").await;
            for i in 0..100 {
                put.put(format!("new-{i}"), PutOptions::default())
                    .await
                    .unwrap();
            }
            let everything = |handled: &HashMap<String, u32>| {
                (0..100).all(|i| {
                    handled.contains_key(&format!("old-{i}"))
                        && handled.contains_key(&format!("new-{i}"))
                })
            };
            let deadline = Instant::now() + Duration::from_secs(8);
            while !everything(&handled.lock().unwrap()) {
                assert!(
                    Instant::now() < deadline,
                    "not consumed after the restart: {:?}",
                    counters.snapshot()
                );
                Timer::after(Duration::from_millis(10)).await;
            }
            let deadline = Instant::now() + Duration::from_secs(3);
            loop {
                let stats = put.stats_tube("restart").await.unwrap();
                if stats.current_jobs_ready + stats.current_jobs_reserved == 0 {
                    break;
                }
                assert!(Instant::now() < deadline, "{stats:?}");
                Timer::after(Duration::from_millis(10)).await;
            }
            shutdown.trigger();
        })
        .await;
        assert_eq!(totals.reconnects, 3, "each slot reconnected once");
        let repeats: u32 = handled.lock().unwrap().values().map(|n| n - 1).sum();
        assert!(repeats <= 3, "{repeats} repeats, {totals:?}");
    });
}
