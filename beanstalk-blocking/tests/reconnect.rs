//! The reconnecting client across a server restart.

use std::thread;
use std::time::{Duration, Instant};

use beanstalk_blocking::proto::retry::ReconnectPolicy;
use beanstalk_blocking::proto::stats::JobState;
use beanstalk_blocking::{
    Client, CommandError, Commands, Error, Options, PutOptions, ReconnectingClient,
};
use beanstalk_test_support::Server;

/// The server restarts while the client is idle: the next put notices the
/// closed connection before sending, goes out on a new one and is
/// confirmed, rather than being written into the dead socket and reported
/// as unknown.
#[test]
fn put_after_an_idle_restart_is_confirmed() {
    let mut server = Server::builder().binlog_temp().start();
    let mut client = ReconnectingClient::connect(&server.url()).unwrap();
    client.use_tube("after").unwrap();
    client.put("before", PutOptions::default()).unwrap();
    server.kill9();
    server.restart();
    thread::sleep(Duration::from_millis(200));
    let receipt = client.put("after", PutOptions::default()).unwrap();
    assert_eq!(client.reconnects(), 1);
    let mut check = Client::connect(&server.url()).unwrap();
    let stats = check.stats_job(receipt.id).unwrap();
    assert_eq!(stats.tube, "after", "the tube in use was restored first");
    assert_eq!(server.stats_counter("cmd-put"), 1, "sent once");
}

/// A caller's error is not a lost connection: a zero timeout fails the
/// connect at once instead of being retried through the whole backoff
/// (about 6 s with the default policy).
#[test]
fn a_zero_timeout_is_not_retried() {
    let server = Server::start();
    let zero = Options::default().read_timeout(Duration::ZERO);
    // Each look at the stats is a connection of its own.
    let connections = server.stats_counter("total-connections");
    let started = Instant::now();
    let refused = ReconnectingClient::connect_with(&server.url(), zero, Default::default());
    assert!(
        matches!(
            refused,
            Err(Error::Command(CommandError::ZeroTimeout { which: "read" }))
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
#[test]
fn a_job_past_the_clients_limit_stays_reserved_to_be_buried() {
    let server = Server::builder().max_job_size(300_000).start();
    let mut producer =
        Client::connect_with(&server.url(), Options::default().max_job_size(300_000)).unwrap();
    let id = producer
        .put(vec![b'x'; 100_000], PutOptions::default())
        .unwrap()
        .id;
    // Attempts without end, as a worker's client has.
    let policy = ReconnectPolicy::default().max_attempts(None);
    let mut client =
        ReconnectingClient::connect_with(&server.url(), Options::default(), policy).unwrap();
    let (answered, answer) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let reserved = client.reserve_with_timeout(0);
        let _ = answered.send((reserved, client));
    });
    let (reserved, mut client) = answer
        .recv_timeout(Duration::from_secs(3))
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
    let stats = producer.stats_job(id).unwrap();
    assert_eq!((stats.reserves, stats.state), (1, JobState::Reserved));
    client.bury(id, stats.pri).unwrap();
    assert_eq!(producer.stats_job(id).unwrap().state, JobState::Buried);
    client.put("next", PutOptions::default()).unwrap();
    assert_eq!(client.reconnects(), 0);
}

/// Only a command whose replies carry bodies gives up on a body past the
/// client's limit: after a `put`, a reply announcing one is the server's
/// fault, the connection broke after the put was sent, and the put is
/// reported unconfirmed (its job may exist), as for any other break.
#[test]
fn a_put_answered_with_a_huge_body_is_unconfirmed() {
    use beanstalk_test_support::FakePeer;
    use std::io::{BufRead, BufReader, Write};
    let peer = FakePeer::start(|stream| {
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let mut body = String::new();
        reader.read_line(&mut body).unwrap();
        stream.write_all(b"OK 99999999\r\n").unwrap();
    });
    let mut client = ReconnectingClient::connect_with(
        &peer.url(),
        Options::default(),
        ReconnectPolicy::default(),
    )
    .unwrap();
    let error = client.put("x", PutOptions::default()).unwrap_err();
    assert!(matches!(error, Error::Unconfirmed { .. }), "{error:?}");
}
