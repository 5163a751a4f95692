//! Dropping command futures part-way never desynchronises the stream.

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use beanstalk_test_support::Server;
use beanstalk_tokio::{AsyncCommands, Client, Error, PutOptions};

/// A tiny deterministic generator, so a failure can be replayed.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

/// Polls `future` at most `polls` times, yielding in between so replies
/// can arrive, and drops it if it is not done by then.
async fn poll_at_most<F: Future>(future: F, polls: u64) -> Option<F::Output> {
    let mut future = pin!(future);
    for _ in 0..polls {
        if let Poll::Ready(output) = poll_fn(|cx| Poll::Ready(future.as_mut().poll(cx))).await {
            return Some(output);
        }
        tokio::task::yield_now().await;
    }
    None
}

#[tokio::test]
async fn dropped_futures_leave_every_reply_with_its_command() {
    let server = Server::start();
    let mut client = Client::connect(&server.url()).await.unwrap();
    let mut rng = Lcg(7);
    let mut completed = 0;
    let mut dropped = 0;
    for i in 0..600u64 {
        let body = format!("job-{i}");
        // Give the put 1-4 polls: many are dropped after writing, some mid-reply.
        match poll_at_most(
            client.put(body.as_str(), PutOptions::default()),
            1 + rng.next() % 4,
        )
        .await
        {
            Some(receipt) => {
                let id = receipt.unwrap().id;
                completed += 1;
                // The next reply read must be this peek's, never a dropped put's.
                let job = client
                    .peek(id)
                    .await
                    .unwrap()
                    .expect("the job just put exists");
                assert_eq!(
                    job.body,
                    body.as_bytes(),
                    "reply matched to the wrong command"
                );
            }
            None => dropped += 1,
        }
        if i % 50 == 0 {
            let stats = client.stats().await.unwrap();
            assert!(stats.cmd_put <= i + 1);
        }
    }
    assert!(
        client.is_open(),
        "cancelled plain commands keep the connection"
    );
    assert!(completed > 0, "no put completed");
    assert!(dropped > 0, "no put was dropped, so nothing was tested");
    // Every put reached the server, dropped or not.
    let stats = client.stats().await.unwrap();
    assert_eq!(
        stats.cmd_put, 600,
        "{completed} completed, {dropped} dropped"
    );
}

#[tokio::test]
async fn dropped_batches_are_discarded_in_order() {
    let server = Server::start();
    let mut client = Client::connect(&server.url()).await.unwrap();
    for round in 0..20u64 {
        let puts: Vec<_> = (0..200)
            .map(|i| {
                beanstalk_tokio::cmd::Put::new(format!("{round}-{i}"), PutOptions::default())
                    .unwrap()
            })
            .collect();
        let _ = tokio::time::timeout(
            Duration::from_micros(200 * round),
            client.execute_many(puts),
        )
        .await;
        let id = client
            .put("marker", PutOptions::default())
            .await
            .unwrap()
            .id;
        assert_eq!(client.peek(id).await.unwrap().unwrap().body, &b"marker"[..]);
    }
}

#[tokio::test]
async fn dropped_reserve_closes_the_connection_and_frees_the_job() {
    let server = Server::start();
    let mut client = Client::connect(&server.url()).await.unwrap();
    tokio::select! {
        _ = client.reserve() => panic!("nothing was ready"),
        () = tokio::time::sleep(Duration::from_millis(50)) => {}
    }
    assert!(
        !client.is_open(),
        "a waiting reserve would hold every later reply"
    );
    assert!(matches!(client.stats().await, Err(Error::Command(_))));
    // A job put now is not swallowed by the abandoned reserve.
    let mut other = Client::connect(&server.url()).await.unwrap();
    let id = other.put("fresh", PutOptions::default()).await.unwrap().id;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(other.reserve_with_timeout(1).await.unwrap().id, id);
}

#[tokio::test]
async fn reconnect_after_a_dropped_reserve_restores_the_watch_list() {
    let server = Server::start();
    let mut client = Client::connect(&server.url()).await.unwrap();
    client.watch("work").await.unwrap();
    client.ignore("default").await.unwrap();
    let _ = tokio::time::timeout(Duration::from_millis(20), client.reserve()).await;
    assert!(!client.is_open());
    client.reconnect().await.unwrap();
    let watched = client.list_tubes_watched().await.unwrap();
    assert_eq!(watched.iter().collect::<Vec<_>>(), ["work"]);
}

/// Dropping `recv` loses nothing, even with a waiting reserve in flight:
/// the token is still the caller's, so the connection stays open and the
/// reservation comes back from the next `recv`.
#[tokio::test]
async fn dropped_recv_keeps_the_reply_for_the_next() {
    use beanstalk_tokio::cmd;
    use beanstalk_tokio::proto::Request;

    let server = Server::start();
    let mut client = Client::connect(&server.url()).await.unwrap();
    let reserve = client.send(&cmd::Reserve).unwrap();
    let waited = tokio::time::timeout(Duration::from_millis(200), client.recv()).await;
    assert!(waited.is_err(), "nothing to reserve yet: {waited:?}");
    assert!(client.is_open());

    let mut producer = Client::connect(&server.url()).await.unwrap();
    let id = producer
        .put("late", PutOptions::default())
        .await
        .unwrap()
        .id;
    let (token, reply) = client.recv().await.unwrap();
    assert_eq!(token, reserve);
    let job = cmd::Reserve::from_response(reply).unwrap();
    assert_eq!((job.id, &job.body[..]), (id, &b"late"[..]));
    client.delete(id).await.unwrap();
    assert_eq!(server.stats_counter("cmd-delete"), 1);
}
