//! The socket read timeout that the client keeps between commands (the
//! hand-made pipeline of `send`/`recv` is in the conformance suite).

use std::thread;
use std::time::{Duration, Instant};

use beanstalk_blocking::{Client, Commands, Error, Options, PutOptions};
use beanstalk_test_support::Server;

/// The socket timeout a short-timeout command left in place must not cut
/// a plain `reserve` (which has no deadline) short: it keeps waiting.
#[test]
fn reserve_outlives_an_earlier_shorter_socket_timeout() {
    let server = Server::start();
    let options = Options::default().read_timeout(Duration::from_millis(100));
    let mut client = Client::connect_with(&server.url(), options).unwrap();
    client.watch("late").unwrap(); // leaves a 100 ms socket timeout behind
    let url = server.url();
    let producer = thread::spawn(move || {
        thread::sleep(Duration::from_millis(600));
        let mut producer = Client::connect(&url).unwrap();
        producer.use_tube("late").unwrap();
        producer.put("late job", PutOptions::default()).unwrap()
    });
    let started = Instant::now();
    let job = client.reserve().unwrap();
    assert!(started.elapsed() >= Duration::from_millis(500));
    assert_eq!(job.id, producer.join().unwrap().id);
    client.delete(job.id).unwrap();
}

/// A deadline still holds when the socket timeout was set for a longer
/// one: the read gives up at the command's own deadline.
#[test]
fn deadlines_hold_whatever_socket_timeout_was_left() {
    let server = Server::start();
    let mut client = Client::connect(&server.url()).unwrap();
    client.watch("default").unwrap(); // leaves the 5 s default behind
    let started = Instant::now();
    let result = client.with_timeout(Duration::from_millis(200)).reserve();
    assert!(matches!(result, Err(Error::Timeout(_))), "{result:?}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(190) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
}

/// A short timeout runs out on time, not a scheduler tick or two late: a
/// socket timeout alone makes a 2 ms wait last 5-10 ms on a 250 Hz kernel.
/// The median of 21 waits bounds it, so a busy machine's odd slow wake-up
/// does not decide the test.
#[cfg(unix)]
#[test]
fn short_timeouts_run_out_on_time() {
    let server = Server::start();
    let mut waits = Vec::new();
    for _ in 0..21 {
        // Each timeout closes its connection.
        let mut client = Client::connect(&server.url()).unwrap();
        let started = Instant::now();
        let result = client.with_timeout(Duration::from_millis(2)).reserve();
        let waited = started.elapsed();
        assert!(matches!(result, Err(Error::Timeout(_))), "{result:?}");
        assert!(waited >= Duration::from_millis(2), "{waited:?}");
        waits.push(waited);
    }
    waits.sort();
    assert!(waits[10] < Duration::from_millis(5), "{waits:?}");
}
