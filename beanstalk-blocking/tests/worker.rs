//! The blocking worker and reconnecting client against real servers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use beanstalk_blocking::proto::retry::{Backoff, ReconnectPolicy};
use beanstalk_blocking::worker::{CounterSnapshot, Counters, Shutdown, Worker, WorkerJob};
use beanstalk_blocking::{
    Client, Commands, Error, Options, Outcome, PutOptions, ReconnectingClient,
};
use beanstalk_test_support::{FaultPlan, FaultProxy, Server};

mod soak;

fn wait_for(counters: &Counters, limit: Duration, done: impl Fn(&CounterSnapshot) -> bool) {
    let deadline = Instant::now() + limit;
    loop {
        let now = counters.snapshot();
        if done(&now) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out; counters: {now:?}");
        thread::sleep(Duration::from_millis(5));
    }
}

fn producer(url: &str, tube: &str) -> Client {
    let mut client = Client::connect(url).unwrap();
    client.use_tube(tube).unwrap();
    client
}

/// Starts `worker` on a thread; returns its shutdown and join handle.
fn start<H: beanstalk_blocking::Handler>(
    worker: Worker,
    handler: H,
) -> (Shutdown, thread::JoinHandle<CounterSnapshot>) {
    let shutdown = Shutdown::new();
    let running = thread::spawn({
        let shutdown = shutdown.clone();
        move || worker.run(handler, &shutdown)
    });
    (shutdown, running)
}

/// N jobs, M threads: each job handled exactly once; the server agrees.
#[test]
fn pool_handles_each_job_exactly_once() {
    const JOBS: u64 = 200;
    let server = Server::start();
    let mut put = producer(&server.url(), "pool");
    for i in 0..JOBS {
        put.put(format!("job-{i}"), PutOptions::default()).unwrap();
    }
    let seen = Arc::new(Mutex::new(HashMap::<u64, u32>::new()));
    let worker = Worker::builder(&server.url())
        .tube("pool")
        .concurrency(4)
        .build()
        .unwrap();
    let counters = worker.counters();
    let started = Instant::now();
    let (shutdown, running) = start(worker, {
        let seen = seen.clone();
        move |job: WorkerJob| {
            *seen.lock().unwrap().entry(job.id()).or_default() += 1;
            thread::sleep(Duration::from_millis(1));
            Ok::<(), String>(())
        }
    });
    wait_for(&counters, Duration::from_secs(8), |c| c.succeeded == JOBS);
    println!("{JOBS} jobs, 4 threads: {:?}", started.elapsed());
    shutdown.trigger();
    let totals = running.join().unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len() as u64, JOBS);
    assert!(seen.values().all(|&n| n == 1));
    assert_eq!(
        (totals.reserved, totals.succeeded, totals.lost),
        (JOBS, JOBS, 0)
    );
    let stats = put.stats_tube("pool").unwrap();
    assert_eq!(stats.current_jobs_ready + stats.current_jobs_reserved, 0);
    assert_eq!(server.stats_counter("cmd-delete"), JOBS);
}

/// A handler slower than twice the TTR keeps its job by touching.
#[test]
fn slow_handler_keeps_its_job_by_touching() {
    let server = Server::start();
    let mut put = producer(&server.url(), "slow");
    let job = put.put("slow", PutOptions::default().ttr(2)).unwrap();
    let worker = Worker::builder(&server.url()).tube("slow").build().unwrap();
    let counters = worker.counters();
    let (shutdown, running) = start(worker, |_job: WorkerJob| {
        thread::sleep(Duration::from_millis(4500));
        Ok::<(), String>(())
    });
    wait_for(&counters, Duration::from_secs(2), |c| c.reserved == 1);
    let mut thief = Client::connect(&server.url()).unwrap();
    thief.watch("slow").unwrap();
    assert!(matches!(
        thief.reserve_with_timeout(4),
        Err(Error::TimedOut)
    ));
    wait_for(&counters, Duration::from_secs(3), |c| c.succeeded == 1);
    shutdown.trigger();
    let totals = running.join().unwrap();
    assert!(totals.touched >= 5, "{totals:?}");
    assert!(thief.peek(job.id).unwrap().is_none());
}

/// Failures release with backoff, then bury; an explicit outcome is obeyed.
#[test]
fn failures_and_explicit_outcomes() {
    let server = Server::start();
    let mut put = producer(&server.url(), "fail");
    put.put("fail", PutOptions::default()).unwrap();
    put.put("bury", PutOptions::default()).unwrap();
    let worker = Worker::builder(&server.url())
        .tube("fail")
        .concurrency(2)
        .max_attempts(3)
        .release_backoff(Backoff::constant(Duration::ZERO))
        .build()
        .unwrap();
    let counters = worker.counters();
    let (shutdown, running) = start(worker, |job: WorkerJob| match &job.body()[..] {
        b"bury" => Ok(Outcome::Bury),
        _ => Err("always fails"),
    });
    wait_for(&counters, Duration::from_secs(5), |c| c.buried == 2);
    shutdown.trigger();
    let totals = running.join().unwrap();
    assert_eq!((totals.reserved, totals.failed, totals.released), (4, 3, 2));
    assert_eq!(put.stats_tube("fail").unwrap().current_jobs_buried, 2);
}

/// Shutdown: idle slots stop at once; a handler past the grace period has
/// its job released; the server has every job back.
#[test]
fn shutdown_releases_what_is_still_running() {
    let server = Server::start();
    let mut put = producer(&server.url(), "stop");
    put.put("long", PutOptions::default()).unwrap();
    let worker = Worker::builder(&server.url())
        .tube("stop")
        .concurrency(3) // one busy, two waiting in reserve
        .shutdown_grace(Duration::from_millis(300))
        .build()
        .unwrap();
    let counters = worker.counters();
    let (shutdown, running) = start(worker, |_job: WorkerJob| {
        thread::sleep(Duration::from_secs(3));
        Ok::<(), String>(())
    });
    wait_for(&counters, Duration::from_secs(2), |c| c.reserved == 1);
    let deadline = Instant::now() + Duration::from_secs(2);
    while server.stats_counter("current-waiting") < 2 {
        assert!(Instant::now() < deadline);
        thread::sleep(Duration::from_millis(5));
    }
    let triggered = Instant::now();
    shutdown.trigger();
    let totals = running.join().unwrap();
    let took = triggered.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert_eq!((totals.released, totals.succeeded), (1, 0));
    let stats = put.stats_tube("stop").unwrap();
    assert_eq!(
        (stats.current_jobs_ready, stats.current_jobs_reserved),
        (1, 0)
    );
}

/// Shutdown with a handler that finishes within the grace period: the job
/// is completed and deleted.
#[test]
fn shutdown_lets_in_flight_handlers_finish() {
    let server = Server::start();
    let mut put = producer(&server.url(), "finish");
    put.put("short", PutOptions::default()).unwrap();
    put.put("never", PutOptions::default().delay(60)).unwrap();
    let worker = Worker::builder(&server.url())
        .tube("finish")
        .build()
        .unwrap();
    let counters = worker.counters();
    let (shutdown, running) = start(worker, |_job: WorkerJob| {
        thread::sleep(Duration::from_millis(400));
        Ok::<(), String>(())
    });
    wait_for(&counters, Duration::from_secs(2), |c| c.reserved == 1);
    shutdown.trigger();
    let totals = running.join().unwrap();
    assert_eq!((totals.succeeded, totals.released), (1, 0));
    assert_eq!(server.stats_counter("cmd-delete"), 1);
}

/// kill -9 and restart mid-run: the worker reconnects and consumes the
/// jobs put after the restart.
#[test]
fn worker_survives_a_server_restart() {
    let mut server = Server::builder().binlog_temp().fsync_never().start();
    let proxy_free_url = server.url();
    let worker = Worker::builder(&proxy_free_url)
        .tube("restart")
        .concurrency(2)
        .reconnect_backoff(Backoff::new(
            Duration::from_millis(5),
            Duration::from_millis(100),
        ))
        .build()
        .unwrap();
    let counters = worker.counters();
    let (shutdown, running) = start(worker, |_job: WorkerJob| Ok::<(), String>(()));
    let mut put = producer(&server.url(), "restart");
    for _ in 0..20 {
        put.put("old", PutOptions::default()).unwrap();
    }
    wait_for(&counters, Duration::from_secs(3), |c| c.succeeded == 20);
    server.kill9();
    thread::sleep(Duration::from_millis(100));
    server.restart();
    let mut put = producer(&server.url(), "restart");
    for _ in 0..20 {
        put.put("new", PutOptions::default()).unwrap();
    }
    wait_for(&counters, Duration::from_secs(5), |c| c.succeeded == 40);
    assert!(!running.is_finished());
    shutdown.trigger();
    let totals = running.join().unwrap();
    assert_eq!(totals.reconnects, 2, "{totals:?}");
}

/// A cut while slots wait in reserve: they reconnect and go on.
#[test]
fn cut_during_reserve_is_replaced() {
    let server = Server::start();
    let proxy = FaultProxy::start(&server.addr(), FaultPlan::new());
    let worker = Worker::builder(&proxy.url())
        .tube("cut")
        .concurrency(2)
        .reconnect_backoff(Backoff::new(
            Duration::from_millis(5),
            Duration::from_millis(100),
        ))
        .build()
        .unwrap();
    let counters = worker.counters();
    let (shutdown, running) = start(worker, |_job: WorkerJob| Ok::<(), String>(()));
    let deadline = Instant::now() + Duration::from_secs(2);
    while server.stats_counter("current-waiting") < 2 {
        assert!(Instant::now() < deadline);
        thread::sleep(Duration::from_millis(5));
    }
    proxy.cut_all();
    let mut put = producer(&server.url(), "cut");
    for _ in 0..5 {
        put.put("x", PutOptions::default()).unwrap();
    }
    wait_for(&counters, Duration::from_secs(3), |c| c.succeeded == 5);
    shutdown.trigger();
    assert_eq!(running.join().unwrap().reconnects, 2);
}

/// The blocking reconnecting client: a stream of puts through a kill -9
/// and restart loses no acknowledged job; failures are unconfirmed; lost
/// leases are refused unsent.
#[test]
fn reconnecting_client_through_a_restart() {
    let mut server = Server::builder().binlog_temp().fsync_never().start();
    let policy = ReconnectPolicy::default()
        .backoff(Backoff::new(
            Duration::from_millis(5),
            Duration::from_millis(100),
        ))
        .max_attempts(Some(100));
    let mut client =
        ReconnectingClient::connect_with(&server.url(), Options::default(), policy).unwrap();
    client.use_tube("stream").unwrap();
    client.watch("stream").unwrap();
    let held = {
        client.put("held", PutOptions::default()).unwrap();
        client.reserve().unwrap()
    };
    let mut acked = Vec::new();
    let mut unconfirmed = 0;
    for i in 0..1000 {
        if i == 500 {
            server.kill9();
            thread::sleep(Duration::from_millis(50));
            server.restart();
        }
        match client.put(format!("job-{i}"), PutOptions::default()) {
            Ok(receipt) => acked.push((receipt.id, i)),
            Err(error) => {
                assert!(error.outcome_unknown(), "{error}");
                assert!(matches!(error, Error::Unconfirmed { .. }), "{error:?}");
                unconfirmed += 1;
            }
        }
    }
    assert_eq!(client.reconnects(), 1);
    assert!(unconfirmed <= 1);
    let mut check = Client::connect(&server.url()).unwrap();
    for (id, i) in acked {
        let job = check.peek(id).unwrap().expect("acknowledged job survived");
        assert_eq!(job.body, format!("job-{i}").as_bytes());
    }
    // The job reserved before the restart is ready again; not ours to delete.
    assert!(matches!(
        client.delete(held.id),
        Err(Error::LeaseLost { .. })
    ));
    assert!(check.peek(held.id).unwrap().is_some());
    assert_eq!(client.list_tube_used().unwrap().as_str(), "stream");
}

/// A wait without end (`Duration::MAX`, past what the clock can hold)
/// neither panics nor returns before the signal.
#[test]
fn an_unbounded_wait_returns_once_triggered() {
    let shutdown = Shutdown::new();
    let trigger = shutdown.clone();
    let started = Instant::now();
    let triggering = thread::spawn(move || {
        thread::sleep(Duration::from_millis(100));
        trigger.trigger();
    });
    assert!(shutdown.wait_timeout(Duration::MAX));
    assert!(started.elapsed() >= Duration::from_millis(100));
    triggering.join().unwrap();
}

/// A reserve that fails (the server says `INTERNAL_ERROR`) is tried again
/// after a pause, during which the server closes the idle connection. The
/// next reserve must go out on a connection registered for shutdown: one
/// the client opened on its own inside the call would wait for a job
/// however long the shutdown waits.
#[test]
fn shutdown_stops_a_reserve_on_a_connection_replaced_while_idle() {
    use beanstalk_test_support::FakePeer;
    use std::io::{BufRead, BufReader, Write};
    use std::sync::atomic::{AtomicBool, Ordering};

    let failed_once = Arc::new(AtomicBool::new(false));
    let peer = FakePeer::start(move |stream| {
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap_or(0) > 0 {
            match line.split_whitespace().next() {
                Some("watch") => stream.write_all(b"WATCHING 2\r\n").unwrap(),
                Some("ignore") => stream.write_all(b"WATCHING 1\r\n").unwrap(),
                // The first reserve fails and the connection closes; the
                // others wait for a job that never comes.
                Some("reserve") if !failed_once.swap(true, Ordering::SeqCst) => {
                    stream.write_all(b"INTERNAL_ERROR\r\n").unwrap();
                    return;
                }
                Some("reserve") => {}
                _ => stream.write_all(b"UNKNOWN_COMMAND\r\n").unwrap(),
            }
            line.clear();
        }
    });
    let worker = Worker::builder(&peer.url())
        .tube("t")
        .concurrency(1)
        .build()
        .unwrap();
    let (shutdown, running) = start(worker, |_job: WorkerJob| Ok::<_, Error>(Outcome::Delete));
    // Past the pause after the failed reserve: the next one waits.
    thread::sleep(Duration::from_secs(1));
    assert!(
        peer.connections() >= 2,
        "the failed reserve's connection was replaced"
    );
    shutdown.trigger();
    let triggered = Instant::now();
    while !running.is_finished() {
        assert!(
            triggered.elapsed() < Duration::from_secs(3),
            "the worker still runs after shutdown"
        );
        thread::sleep(Duration::from_millis(10));
    }
    running.join().unwrap();
}

/// However long a job's TTR (`stats-job` says `u64::MAX` seconds, which no
/// beanstalkd sends), scheduling its touches never overflows the clock:
/// the job is handled, and the worker goes on.
#[test]
fn a_job_with_an_impossible_ttr_is_handled() {
    let server = beanstalk_test_support::worker_suite::server_with_an_impossible_ttr();
    let worker = Worker::builder(&server.url()).tube("t").build().unwrap();
    let counters = worker.counters();
    let (shutdown, running) = start(worker, |_job: WorkerJob| Ok::<_, Error>(Outcome::Delete));
    wait_for(&counters, Duration::from_secs(2), |c| c.succeeded == 1);
    shutdown.trigger();
    let totals = running.join().expect("the worker does not panic");
    assert_eq!((totals.reserved, totals.succeeded, totals.lost), (1, 1, 0));
}

/// A slot whose `watch` the server refuses (out of memory, which passes)
/// pauses and subscribes again, as in the async workers' suite.
#[test]
fn a_slot_refused_its_watch_subscribes_again() {
    let server = beanstalk_test_support::worker_suite::server_out_of_memory_at_the_first_watch();
    let worker = Worker::builder(&server.url()).tube("t").build().unwrap();
    let counters = worker.counters();
    let (shutdown, running) = start(worker, |_job: WorkerJob| Ok::<_, Error>(Outcome::Delete));
    wait_for(&counters, Duration::from_secs(3), |c| c.succeeded == 1);
    shutdown.trigger();
    let totals = running.join().expect("the worker does not panic");
    assert_eq!((totals.reserved, totals.succeeded), (1, 1));
}

/// A server that answers every `reserve` with `DEADLINE_SOON` is not
/// polled in a tight loop.
#[test]
fn deadline_soon_on_every_reserve_is_not_a_tight_loop() {
    let server = beanstalk_test_support::worker_suite::server_always_deadline_soon();
    let worker = Worker::builder(&server.url()).tube("t").build().unwrap();
    let (shutdown, running) = start(worker, |_job: WorkerJob| Ok::<_, Error>(Outcome::Delete));
    thread::sleep(Duration::from_secs(1));
    shutdown.trigger();
    running.join().unwrap();
    let connections = server.connections();
    assert!(
        (2..=10).contains(&connections),
        "{connections} connections in a second"
    );
}

/// The shutdown ends a slot whose server went bad between a reserve and
/// the `stats-job` after it, as in the async workers' suite.
#[test]
fn shutdown_ends_a_slot_retrying_for_its_jobs_stats() {
    let server = beanstalk_test_support::worker_suite::server_broken_after_a_reserve();
    let worker = Worker::builder(&server.url())
        .tube("t")
        .reconnect_backoff(Backoff::new(
            Duration::from_millis(5),
            Duration::from_millis(100),
        ))
        .build()
        .unwrap();
    let (shutdown, running) = start(worker, |_job: WorkerJob| Ok::<_, Error>(Outcome::Delete));
    let deadline = Instant::now() + Duration::from_secs(3);
    while server.connections() < 3 {
        assert!(
            Instant::now() < deadline,
            "the slot did not retry stats-job"
        );
        thread::sleep(Duration::from_millis(5));
    }
    shutdown.trigger();
    let stopped_by = Instant::now() + Duration::from_secs(5);
    while !running.is_finished() {
        assert!(
            Instant::now() < stopped_by,
            "the worker still ran 5 s after its shutdown ({} connections)",
            server.connections()
        );
        thread::sleep(Duration::from_millis(5));
    }
    let totals = running.join().unwrap();
    assert_eq!((totals.reserved, totals.succeeded, totals.lost), (1, 0, 1));
}

/// A connection lost under the slot's waiting reserve (the server closes
/// it: a restart, a proxy, an idle timeout) is replaced after the reconnect
/// backoff only (5 ms here), as the async workers do, not after the pause
/// meant for bad replies (200 ms, which 5 cuts used to add up to a second).
#[test]
fn a_connection_lost_under_reserve_is_replaced_at_once() {
    let server = Server::start();
    let proxy = FaultProxy::start(&server.addr(), FaultPlan::new());
    let worker = Worker::builder(&proxy.url())
        .tube("eof")
        .reconnect_backoff(Backoff::new(
            Duration::from_millis(5),
            Duration::from_millis(50),
        ))
        .build()
        .unwrap();
    let (shutdown, running) = start(worker, |_job: WorkerJob| Ok::<_, Error>(Outcome::Delete));
    let mut replacing = Duration::ZERO;
    for round in 1..=5 {
        let deadline = Instant::now() + Duration::from_secs(3);
        while server.stats_counter("current-waiting") != 1 {
            assert!(Instant::now() < deadline, "round {round}: no reserve waits");
            thread::sleep(Duration::from_millis(1));
        }
        let cut = Instant::now();
        proxy.cut_all();
        while proxy.connections() != round + 1 {
            assert!(
                Instant::now() < deadline,
                "round {round}: no new connection"
            );
            thread::sleep(Duration::from_millis(1));
        }
        replacing += cut.elapsed();
    }
    shutdown.trigger();
    let totals = running.join().unwrap();
    assert_eq!(totals.reconnects, 5, "{totals:?}");
    assert!(
        replacing < Duration::from_millis(600),
        "5 lost connections took {replacing:?} to replace"
    );
}

/// A grace period without end (`Duration::MAX`) waits for the running
/// handler however long it takes, without overflowing the clock.
#[test]
fn an_unbounded_grace_lets_the_running_handler_finish() {
    let server = Server::start();
    let mut put = producer(&server.url(), "grace");
    put.put("slow", PutOptions::default()).unwrap();
    let worker = Worker::builder(&server.url())
        .tube("grace")
        .shutdown_grace(Duration::MAX)
        .build()
        .unwrap();
    let counters = worker.counters();
    let (shutdown, running) = start(worker, |_job: WorkerJob| {
        thread::sleep(Duration::from_millis(300));
        Ok::<_, Error>(Outcome::Delete)
    });
    wait_for(&counters, Duration::from_secs(2), |c| c.reserved == 1);
    shutdown.trigger();
    let totals = running.join().expect("the worker does not panic");
    assert_eq!((totals.succeeded, totals.released), (1, 0));
    assert_eq!(server.stats_counter("cmd-delete"), 1);
}

/// A job larger than the worker's `max_job_size` is reserved once and
/// buried, and the job behind it is handled, as in the async workers'
/// suite.
#[test]
fn a_job_past_the_workers_limit_is_buried_and_holds_up_no_other() {
    use beanstalk_test_support::worker_suite::{big_job, big_job_reserves, big_job_state};
    let server = Server::builder().max_job_size(300_000).start();
    let id = big_job(&server);
    let small = server.raw_command(b"put 0 0 60 5\r\nsmall\r\n");
    assert!(small.starts_with(b"INSERTED "), "{small:?}");
    let worker = Worker::builder(&server.url())
        .tube("default")
        .build()
        .unwrap();
    let counters = worker.counters();
    let (shutdown, running) = start(worker, |_job: WorkerJob| Ok::<_, Error>(Outcome::Delete));
    wait_for(&counters, Duration::from_secs(3), |c| c.succeeded == 1);
    shutdown.trigger();
    let totals = running.join().unwrap();
    assert_eq!(
        (
            totals.reserved,
            totals.succeeded,
            totals.buried,
            totals.lost
        ),
        (2, 1, 1, 0)
    );
    assert_eq!(big_job_reserves(&server, id), 1);
    assert_eq!(big_job_state(&server, id), "buried");
}

/// Producers and the worker through mixed faults and a restart, as every
/// adapter runs it: see `mixed_faults::mixed_faults_with_seed`.
#[test]
fn mixed_faults_lose_no_confirmed_job() {
    use beanstalk_test_support::worker_suite::mixed_faults;
    mixed_faults::mixed_faults_lose_no_confirmed_job::<soak::BlockingClients>();
}
