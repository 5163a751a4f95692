//! Hand-made pipelines (`send`/`recv`) and the socket read timeout that
//! the client keeps between commands.

use std::collections::VecDeque;
use std::thread;
use std::time::{Duration, Instant};

use beanstalk_blocking::proto::Request;
use beanstalk_blocking::{Client, Commands, Error, Options, PutOptions, cmd};
use beanstalk_test_support::Server;

/// A sliding window of reservations: never more than `window` jobs reserved
/// or asked for, every job deleted exactly once, follow-ups in one write.
#[test]
fn sliding_window_reserves_and_deletes_every_job() {
    let server = Server::start();
    let mut client = Client::connect(&server.url()).unwrap();
    client.use_tube("window").unwrap();
    client.watch("window").unwrap();
    client.ignore("default").unwrap();
    let puts: Vec<_> = (0..500)
        .map(|i| cmd::Put::new(format!("job {i}"), PutOptions::default()).unwrap())
        .collect();
    assert!(client.execute_many(puts).iter().all(Result::is_ok));

    let window = 16;
    let reserve = cmd::ReserveWithTimeout::new(0).unwrap();
    let mut reserves = VecDeque::new();
    for _ in 0..window {
        reserves.push_back(client.send(&reserve).unwrap());
    }
    let (mut asked, mut deleted) = (window, 0);
    let mut seen = std::collections::BTreeSet::new();
    while deleted < 500 {
        let (token, reply) = client.recv().unwrap();
        if reserves.front() == Some(&token) {
            reserves.pop_front();
            let job = cmd::ReserveWithTimeout::from_response(reply).unwrap();
            assert!(seen.insert(job.id), "job {} reserved twice", job.id);
            // The delete goes before the next reserve, so the server never
            // holds more than `window` jobs for this connection.
            client.send(&cmd::Delete::new(job.id)).unwrap();
            if asked < 500 {
                reserves.push_back(client.send(&reserve).unwrap());
                asked += 1;
            }
            assert!(reserves.len() <= window);
        } else {
            cmd::Delete::from_response(reply).unwrap();
            deleted += 1;
        }
    }
    assert!(reserves.is_empty());
    assert_eq!(client.connection().in_flight(), 0);
    assert_eq!(client.stats_tube("window").unwrap().current_jobs_ready, 0);
    assert_eq!(server.stats_counter("cmd-delete"), 500);
}

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
