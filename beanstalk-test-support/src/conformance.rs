//! One conformance suite for every adapter.
//!
//! The suite is written once, as async functions over
//! [`proto::AsyncCommands`]. An adapter's test file implements [`Adapter`]
//! (a blocking client runs its calls inside the future, which is fine for a
//! test) and expands [`conformance_suite!`](crate::conformance_suite) with
//! its runtime's `block_on`; every suite function becomes one `#[test]`.
//!
//! Every test starts its own private beanstalkd, so tests share no state.

use std::future::Future;
use std::time::{Duration, Instant};

use proto::Job;
use proto::{
    AsyncCommands, CommandError, Error, PutOptions, PutReceipt, ReleaseOutcome, Request, Response,
    Token, cmd, stats::JobState,
};

use crate::{Direction, FakePeer, FaultPlan, FaultProxy, FullBacklogListener, Server};

/// Client settings the suite asks an adapter for.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Read timeout for commands the server answers at once.
    pub read_timeout: Duration,
    /// How long a write may make no progress.
    pub write_timeout: Duration,
    /// The largest job the client sends or accepts.
    pub max_job_size: u32,
    /// How long connecting may take.
    pub connect_timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            read_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(5),
            max_job_size: 65_535,
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// What the suite needs from an adapter beyond the 25 commands.
pub trait Adapter {
    /// The adapter's client, driven through [`AsyncCommands`].
    type Client: AsyncCommands + Send;

    /// Connects to `address` (`host:port`, `beanstalk://...`, `unix:///...`).
    fn connect(
        address: &str,
        settings: Settings,
    ) -> impl Future<Output = Result<Self::Client, Error>> + Send;

    /// Whether the client's connection is still usable.
    fn is_open(client: &Self::Client) -> bool;

    /// Opens a new connection to the same address, restoring use/watch.
    fn reconnect(client: &mut Self::Client) -> impl Future<Output = Result<(), Error>> + Send;

    /// Puts every body pipelined (the adapter's batch or concurrent API),
    /// returning each result in order.
    fn put_pipelined(
        client: &mut Self::Client,
        bodies: Vec<Vec<u8>>,
        options: PutOptions,
    ) -> impl Future<Output = Vec<Result<PutReceipt, Error>>> + Send;

    /// Queues a command of a hand-made pipeline (the client's `send`).
    fn send<R: Request>(client: &mut Self::Client, request: &R) -> Result<Token, Error>;

    /// The next reply of a hand-made pipeline (the client's `recv`).
    fn recv(
        client: &mut Self::Client,
    ) -> impl Future<Output = Result<(Token, Response), Error>> + Send;

    /// `reserve` under a timeout of its own (the client's `with_timeout`).
    fn reserve_within(
        client: &mut Self::Client,
        timeout: Duration,
    ) -> impl Future<Output = Result<Job, Error>> + Send;
}

async fn connect<A: Adapter>(server_url: &str) -> A::Client {
    connect_with::<A>(server_url, Settings::default()).await
}

async fn connect_with<A: Adapter>(url: &str, settings: Settings) -> A::Client {
    match A::connect(url, settings).await {
        Ok(client) => client,
        Err(error) => panic!("connecting to {url}: {error}"),
    }
}

/// A private server, a proxy that forwards its replies a byte per write,
/// and a client connected through the proxy. Keep the proxy bound for as
/// long as the client is used: dropping it closes the connection.
async fn behind_one_byte_replies<A: Adapter>() -> (Server, FaultProxy, A::Client) {
    let server = Server::start();
    let proxy = FaultProxy::start(
        &server.addr(),
        FaultPlan::new().one_byte_chunks(Direction::Downstream),
    );
    let client = connect::<A>(&proxy.url()).await;
    (server, proxy, client)
}

fn opts() -> PutOptions {
    PutOptions::default()
}

/// put, peek, reserve, delete over TCP.
pub async fn put_reserve_delete<A: Adapter>() {
    let server = Server::start();
    let mut client = connect::<A>(&server.url()).await;
    let receipt = client
        .put(&b"hello"[..], opts().priority(7).ttr(30))
        .await
        .unwrap();
    assert!(!receipt.buried);
    let peeked = client.peek(receipt.id).await.unwrap().unwrap();
    assert_eq!(&peeked.body[..], b"hello");
    let job = client.reserve().await.unwrap();
    assert_eq!((job.id, &job.body[..]), (receipt.id, &b"hello"[..]));
    let stats = client.stats_job(job.id).await.unwrap();
    assert_eq!(
        (stats.state, stats.pri, stats.ttr, stats.reserves),
        (JobState::Reserved, 7, 30, 1)
    );
    assert_eq!(stats.tube, "default");
    client.delete(job.id).await.unwrap();
    assert!(matches!(client.delete(job.id).await, Err(Error::NotFound)));
    assert!(client.peek(job.id).await.unwrap().is_none());
}

/// The same over a Unix domain socket.
pub async fn unix_socket<A: Adapter>() {
    let server = Server::builder().unix_socket().start();
    let mut client = connect::<A>(&server.url()).await;
    let id = client.put(&b"via unix"[..], opts()).await.unwrap().id;
    let job = client.reserve_with_timeout(0).await.unwrap();
    assert_eq!((job.id, &job.body[..]), (id, &b"via unix"[..]));
}

/// Bodies with every byte value, CRLF inside, empty, and the server's
/// maximum size come back byte for byte.
pub async fn binary_empty_and_max_bodies<A: Adapter>() {
    let max = 100_000u32;
    let server = Server::builder().max_job_size(max).start();
    let settings = Settings {
        max_job_size: max,
        ..Settings::default()
    };
    let mut client = connect_with::<A>(&server.url(), settings).await;
    let every_byte: Vec<u8> = (0..=255u8).chain(*b"\r\n\r\nRESERVED 1 2\r\n").collect();
    let biggest: Vec<u8> = (0..max).map(|i| (i % 251) as u8).collect();
    for body in [every_byte, Vec::new(), biggest] {
        let id = client.put(body.as_slice(), opts()).await.unwrap().id;
        let job = client.reserve_with_timeout(0).await.unwrap();
        assert_eq!(job.id, id);
        assert_eq!(job.body.len(), body.len());
        assert!(
            job.body[..] == body[..],
            "body of {} bytes differs",
            body.len()
        );
        client.delete(id).await.unwrap();
    }
}

/// use/watch/ignore, the three list commands and NOT_IGNORED.
pub async fn tubes_and_lists<A: Adapter>() {
    let server = Server::start();
    let mut client = connect::<A>(&server.url()).await;
    assert_eq!(client.list_tube_used().await.unwrap(), "default");
    assert_eq!(client.use_tube("emails").await.unwrap(), "emails");
    assert_eq!(client.list_tube_used().await.unwrap(), "emails");
    assert_eq!(client.watch("emails").await.unwrap(), 2);
    assert_eq!(
        client.watch("emails").await.unwrap(),
        2,
        "watching twice adds nothing"
    );
    assert_eq!(client.ignore("default").await.unwrap(), 1);
    assert!(matches!(
        client.ignore("emails").await,
        Err(Error::NotIgnored)
    ));
    let watched = client.list_tubes_watched().await.unwrap();
    assert_eq!(watched.iter().collect::<Vec<_>>(), ["emails"]);
    let all = client.list_tubes().await.unwrap();
    assert!(all.contains("default") && all.contains("emails"), "{all:?}");
    let longest = "x".repeat(200);
    assert_eq!(client.use_tube(longest.as_str()).await.unwrap().len(), 200);
    // Names a YAML reader would type (null, booleans, numbers) or treat as
    // syntax come back exactly, from every reply that carries one.
    let odd = [
        "null", "true", "no", "1", "017", "1.0", "0x1F", "1e5", ".inf", ".nan", "$", "(", ";",
        "a/b", "+1", "...", "$(x)",
    ];
    for name in odd {
        assert_eq!(client.use_tube(name).await.unwrap(), name);
        assert_eq!(client.list_tube_used().await.unwrap(), name);
        client.watch(name).await.unwrap();
        let id = client.put(&b"x"[..], opts()).await.unwrap().id;
        assert_eq!(client.stats_job(id).await.unwrap().tube, name);
        assert_eq!(client.stats_tube(name).await.unwrap().name, name);
    }
    let watched = client.list_tubes_watched().await.unwrap();
    let all = client.list_tubes().await.unwrap();
    for name in odd {
        assert!(watched.contains(name), "{name:?} not in {watched:?}");
        assert!(all.contains(name), "{name:?} not in {all:?}");
    }
}

/// TIMED_OUT, reserve-job, and NOT_FOUND from every command that takes an
/// id or a tube.
pub async fn outcomes_and_not_found<A: Adapter>() {
    let server = Server::start();
    let mut client = connect::<A>(&server.url()).await;
    assert!(matches!(
        client.reserve_with_timeout(0).await,
        Err(Error::TimedOut)
    ));
    let id = client.put(&b"x"[..], opts()).await.unwrap().id;
    let job = client.reserve_job(id).await.unwrap();
    assert_eq!(job.id, id);
    let missing = id + 1000;
    assert!(matches!(
        client.reserve_job(missing).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(client.delete(missing).await, Err(Error::NotFound)));
    assert!(matches!(
        client.release(missing, 1, 0).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        client.bury(missing, 1).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(client.touch(missing).await, Err(Error::NotFound)));
    assert!(matches!(
        client.kick_job(missing).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        client.stats_job(missing).await,
        Err(Error::NotFound)
    ));
    assert!(client.peek(missing).await.unwrap().is_none());
    assert!(client.peek(0).await.unwrap().is_none(), "ids start at 1");
    assert!(matches!(
        client.stats_tube("nosuchtube").await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        client.pause_tube("nosuchtube", 1).await,
        Err(Error::NotFound)
    ));
    assert!(client.peek_ready().await.unwrap().is_none());
    assert!(client.peek_delayed().await.unwrap().is_none());
    assert!(client.peek_buried().await.unwrap().is_none());
    // The connection survived every NOT_FOUND.
    client.touch(id).await.unwrap();
    assert_eq!(
        client.release(id, 5, 0).await.unwrap(),
        ReleaseOutcome::Released
    );
    // A reserved job cannot be reserved again, by its holder or another;
    // buried and delayed ones can be.
    assert_eq!(client.reserve_job(id).await.unwrap().id, id);
    assert!(matches!(client.reserve_job(id).await, Err(Error::NotFound)));
    let mut other = connect::<A>(&server.url()).await;
    assert!(matches!(other.reserve_job(id).await, Err(Error::NotFound)));
    client.bury(id, 5).await.unwrap();
    assert_eq!(other.reserve_job(id).await.unwrap().id, id);
    let delayed = client.put(&b"y"[..], opts().delay(3600)).await.unwrap().id;
    assert_eq!(other.reserve_job(delayed).await.unwrap().id, delayed);
}

/// bury, peek-buried, peek-delayed, kick's buried-before-delayed rule and
/// kick-job.
pub async fn bury_and_kick<A: Adapter>() {
    let server = Server::start();
    let mut client = connect::<A>(&server.url()).await;
    let mut buried = Vec::new();
    for body in [&b"b1"[..], b"b2"] {
        let id = client.put(body, opts()).await.unwrap().id;
        client.reserve_job(id).await.unwrap();
        client.bury(id, 10).await.unwrap();
        buried.push(id);
    }
    for _ in 0..3 {
        client.put(&b"later"[..], opts().delay(3600)).await.unwrap();
    }
    assert_eq!(client.peek_buried().await.unwrap().unwrap().id, buried[0]);
    assert_eq!(
        &client.peek_delayed().await.unwrap().unwrap().body[..],
        b"later"
    );
    assert_eq!(
        client.kick(10).await.unwrap(),
        2,
        "buried jobs are kicked first"
    );
    assert_eq!(client.kick(10).await.unwrap(), 3, "then delayed ones");
    assert_eq!(client.kick(10).await.unwrap(), 0);
    let id = client.put(&b"k"[..], opts().delay(3600)).await.unwrap().id;
    client.kick_job(id).await.unwrap();
    assert!(
        matches!(client.kick_job(id).await, Err(Error::NotFound)),
        "a ready job cannot be kicked"
    );
    let stats = client.stats_job(buried[1]).await.unwrap();
    assert_eq!(
        (stats.state, stats.buries, stats.kicks, stats.pri),
        (JobState::Ready, 1, 1, 10)
    );
}

/// pause-tube: reserve times out during the pause and gets the job after.
pub async fn pause_tube<A: Adapter>() {
    let server = Server::start();
    let mut client = connect::<A>(&server.url()).await;
    client.use_tube("paused").await.unwrap();
    client.watch("paused").await.unwrap();
    let id = client.put(&b"p"[..], opts()).await.unwrap().id;
    client.pause_tube("paused", 1).await.unwrap();
    assert!(matches!(
        client.reserve_with_timeout(0).await,
        Err(Error::TimedOut)
    ));
    assert_eq!(
        client.peek_ready().await.unwrap().unwrap().id,
        id,
        "peek still works"
    );
    let stats = client.stats_tube("paused").await.unwrap();
    assert_eq!((stats.pause, stats.cmd_pause_tube), (1, 1));
    assert!(stats.pause_time_left <= 1);
    let started = Instant::now();
    let job = client.reserve_with_timeout(5).await.unwrap();
    assert_eq!(job.id, id);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(500),
        "reserved after {waited:?}, during the pause"
    );
}

/// DEADLINE_SOON: a job with ttr 2 held until inside the safety margin.
pub async fn deadline_soon<A: Adapter>() {
    let server = Server::start();
    let mut client = connect::<A>(&server.url()).await;
    let id = client.put(&b"slow"[..], opts().ttr(2)).await.unwrap().id;
    assert_eq!(client.reserve().await.unwrap().id, id);
    let started = Instant::now();
    assert!(matches!(
        client.reserve_with_timeout(10).await,
        Err(Error::DeadlineSoon)
    ));
    assert!(started.elapsed() < Duration::from_secs(3));
    // The job is still ours.
    client.delete(id).await.unwrap();
}

/// JOB_TOO_BIG from a server with a small `-z`: the server skips the body,
/// and the connection stays in step.
pub async fn job_too_big<A: Adapter>() {
    let server = Server::builder().max_job_size(10).start();
    let mut client = connect::<A>(&server.url()).await;
    assert!(matches!(
        client.put(&[b'x'; 11][..], opts()).await,
        Err(Error::JobTooBig)
    ));
    assert!(A::is_open(&client));
    let id = client.put(&[b'y'; 10][..], opts()).await.unwrap().id;
    assert_eq!(client.peek(id).await.unwrap().unwrap().body.len(), 10);
}

/// A job larger than the client's `max_job_size`: `peek` and `reserve`
/// fail with the job's id, its body read and dropped, so the connection
/// stays in step, also in a pipeline; the reserved job is this
/// connection's to bury; smaller jobs are read as ever.
pub async fn a_job_past_the_clients_limit_keeps_the_connection<A: Adapter>() {
    let server = Server::builder().max_job_size(300_000).start();
    let big = vec![b'x'; 100_000];
    let mut producer = connect_with::<A>(
        &server.url(),
        Settings {
            max_job_size: 300_000,
            ..Settings::default()
        },
    )
    .await;
    let id = producer.put(&big[..], opts()).await.unwrap().id;
    let small = producer.put("small", opts()).await.unwrap().id;
    let mut client = connect::<A>(&server.url()).await;
    let too_large = |error: &Error| matches!(error, Error::JobTooLarge { id: got, len: 100_000, max: 65_535 } if *got == id);
    let peeked = client.peek(id).await;
    assert!(matches!(peeked, Err(ref e) if too_large(e)), "{peeked:?}");
    // Pipelined: the `stats` behind the reserve gets its own reply.
    let reserve = A::send(&mut client, &cmd::Reserve).unwrap();
    let stats = A::send(&mut client, &cmd::StatsJob::new(id)).unwrap();
    let (token, reply) = A::recv(&mut client).await.unwrap();
    assert_eq!(token, reserve);
    let reserved = cmd::Reserve::from_response(reply);
    assert!(
        matches!(reserved, Err(ref e) if too_large(e)),
        "{reserved:?}"
    );
    let (token, reply) = A::recv(&mut client).await.unwrap();
    assert_eq!(token, stats);
    let stats = cmd::StatsJob::from_response(reply).unwrap();
    assert_eq!((stats.state, stats.reserves), (JobState::Reserved, 1));
    client.bury(id, stats.pri).await.unwrap();
    assert_eq!(
        producer.stats_job(id).await.unwrap().state,
        JobState::Buried
    );
    let job = client.reserve().await.unwrap();
    assert_eq!((job.id, &job.body[..]), (small, &b"small"[..]));
    assert!(A::is_open(&client));
}

/// DRAINING after SIGUSR1: puts are refused, reserve and delete still work.
pub async fn draining<A: Adapter>() {
    let server = Server::start();
    let mut client = connect::<A>(&server.url()).await;
    let id = client.put(&b"before"[..], opts()).await.unwrap().id;
    server.drain();
    let mut refused = false;
    for _ in 0..100 {
        match client.put(&b"after"[..], opts()).await {
            Err(Error::Draining) => {
                refused = true;
                break;
            }
            // The signal may not have been handled yet.
            Ok(receipt) => client.delete(receipt.id).await.unwrap(),
            Err(error) => panic!("{error}"),
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(refused, "the server never started draining");
    assert!(client.stats().await.unwrap().draining);
    assert_eq!(client.reserve_with_timeout(0).await.unwrap().id, id);
    client.delete(id).await.unwrap();
}

/// The three stats commands, with fields checked against what was done.
pub async fn stats_reflect_activity<A: Adapter>() {
    let server = Server::start();
    let mut client = connect::<A>(&server.url()).await;
    client.use_tube("counted").await.unwrap();
    for _ in 0..3 {
        client.put(&b"s"[..], opts().priority(5)).await.unwrap();
    }
    client.put(&b"d"[..], opts().delay(60)).await.unwrap();
    let stats = client.stats().await.unwrap();
    assert_eq!((stats.cmd_put, stats.cmd_use, stats.total_jobs), (4, 1, 4));
    assert_eq!(
        (stats.current_jobs_ready, stats.current_jobs_delayed),
        (3, 1)
    );
    assert_eq!(stats.current_jobs_urgent, 3);
    assert_eq!(stats.current_connections, 1);
    assert_eq!(stats.max_job_size, 65_535);
    assert_eq!(stats.pid, u64::from(server.pid()));
    assert!(!stats.version.is_empty() && !stats.draining);
    let tube = client.stats_tube("counted").await.unwrap();
    assert_eq!(tube.name, "counted");
    assert_eq!(
        (
            tube.current_jobs_ready,
            tube.current_jobs_delayed,
            tube.total_jobs
        ),
        (3, 1, 4)
    );
    assert_eq!((tube.current_using, tube.current_watching), (1, 0));
}

/// Invalid arguments fail before anything is sent: the server's counters
/// do not move.
pub async fn bad_input_never_reaches_the_server<A: Adapter>() {
    let server = Server::start();
    let mut client = connect::<A>(&server.url()).await;
    let long_name = "a".repeat(201);
    let bad_names = [
        "",
        "-leading",
        "a b",
        "tab\there",
        "crlf\r\nput",
        "nul\0",
        "é",
        long_name.as_str(),
    ];
    for name in bad_names {
        assert!(
            matches!(client.use_tube(name).await, Err(Error::Command(_))),
            "{name:?}"
        );
        assert!(
            matches!(client.watch(name).await, Err(Error::Command(_))),
            "{name:?}"
        );
        assert!(
            matches!(client.ignore(name).await, Err(Error::Command(_))),
            "{name:?}"
        );
        assert!(
            matches!(client.stats_tube(name).await, Err(Error::Command(_))),
            "{name:?}"
        );
        assert!(
            matches!(client.pause_tube(name, 1).await, Err(Error::Command(_))),
            "{name:?}"
        );
    }
    let too_long = u32::try_from(i32::MAX).unwrap() + 1;
    assert!(matches!(
        client.reserve_with_timeout(too_long).await,
        Err(Error::Command(CommandError::TimeoutTooLarge { .. }))
    ));
    assert!(matches!(
        client.put(&vec![0u8; 65_536][..], opts()).await,
        Err(Error::Command(CommandError::JobTooBig { len: 65_536, .. }))
    ));
    assert!(
        A::is_open(&client),
        "a caller's mistake leaves the connection usable"
    );
    for key in [
        "cmd-use",
        "cmd-watch",
        "cmd-ignore",
        "cmd-stats-tube",
        "cmd-pause-tube",
        "cmd-put",
        "cmd-reserve-with-timeout",
    ] {
        assert_eq!(server.stats_counter(key), 0, "{key} reached the server");
    }
    assert_eq!(client.use_tube("fine").await.unwrap(), "fine");
}

/// quit closes the connection; later calls say so.
pub async fn quit_closes<A: Adapter>() {
    let server = Server::start();
    let mut client = connect::<A>(&server.url()).await;
    let id = client.put(&b"q"[..], opts()).await.unwrap().id;
    client.reserve().await.unwrap();
    client.quit().await.unwrap();
    assert!(!A::is_open(&client));
    assert!(matches!(
        client.stats().await,
        Err(Error::Command(CommandError::Closed))
    ));
    // The job this connection held went back to ready.
    let mut other = connect::<A>(&server.url()).await;
    assert_eq!(other.reserve_with_timeout(1).await.unwrap().id, id);
}

/// Pipelined puts come back in order with their own ids.
pub async fn pipelined_puts<A: Adapter>() {
    let server = Server::start();
    let mut client = connect::<A>(&server.url()).await;
    let bodies: Vec<Vec<u8>> = (0..5000).map(|i| format!("job-{i}").into_bytes()).collect();
    let receipts = A::put_pipelined(&mut client, bodies.clone(), opts()).await;
    let ids: Vec<u64> = receipts.into_iter().map(|r| r.unwrap().id).collect();
    assert!(
        ids.windows(2).all(|w| w[1] == w[0] + 1),
        "ids in send order"
    );
    for (id, body) in ids.iter().zip(&bodies).step_by(997) {
        assert_eq!(client.peek(*id).await.unwrap().unwrap().body[..], body[..]);
    }
    assert_eq!(server.stats_counter("cmd-put"), 5000);
}

/// Pipelined 60 KB puts, a few of which fill the window, with replies cut
/// into one-byte pieces: the reads that wait for as many replies as the
/// batch needs before it can send more (or, at the end, for all of them)
/// must never wait for a reply that is not coming, so every batch size
/// ends well within the read timeout, in order and intact.
pub async fn pipelined_large_puts<A: Adapter>() {
    const BODY: usize = 60_000;
    let (server, _proxy, mut client) = behind_one_byte_replies::<A>().await;
    let mut last = None;
    // 1 to 12 puts: short of the window, the window itself, and refills of it.
    for count in 1..=12usize {
        let bodies: Vec<Vec<u8>> = (0..count)
            .map(|i| vec![b'a' + (count + i) as u8 % 26; BODY])
            .collect();
        let started = Instant::now();
        let receipts = A::put_pipelined(&mut client, bodies.clone(), opts()).await;
        let elapsed = started.elapsed();
        assert!(
            elapsed < Duration::from_secs(2),
            "{count} puts took {elapsed:?}: a read waited for replies not coming"
        );
        let ids: Vec<u64> = receipts
            .into_iter()
            .map(|r| r.unwrap_or_else(|error| panic!("{count} puts: {error}")).id)
            .collect();
        assert!(
            ids.windows(2).all(|w| w[1] == w[0] + 1),
            "ids in send order"
        );
        last = Some((ids[count - 1], bodies[count - 1].clone()));
    }
    assert_eq!(server.stats_counter("cmd-put"), (1..=12).sum::<u64>());
    // One peek: its 60 KB come back a byte per write.
    let (id, body) = last.unwrap();
    let job = client.peek(id).await.unwrap().unwrap();
    assert!(job.body[..] == body[..], "the last body comes back intact");
}

/// A batch of 60 KB puts keeps no more unanswered than the cap
/// ([`MAX_UNANSWERED_SHORT_REPLY_BYTES`], 256 KiB): with every reply held
/// back by the proxy, the client writes four puts (240,092 bytes), not a
/// fifth that would take it to 300,115, then times out. Five unanswered
/// sent about one run in five of 5,000 such puts cross-core into a mode
/// where the client's copies into the socket took four times their CPU.
///
/// [`MAX_UNANSWERED_SHORT_REPLY_BYTES`]: proto::batch::MAX_UNANSWERED_SHORT_REPLY_BYTES
pub async fn pipelined_puts_stop_at_the_unanswered_cap<A: Adapter>() {
    use proto::batch::MAX_UNANSWERED_SHORT_REPLY_BYTES;

    let server = Server::start();
    let proxy = FaultProxy::start(
        &server.addr(),
        FaultPlan::new().stall_after(Direction::Downstream, 0),
    );
    let settings = Settings {
        read_timeout: Duration::from_millis(300),
        ..Settings::default()
    };
    let mut client = connect_with::<A>(&proxy.url(), settings).await;
    let body = vec![b'x'; 60_000];
    let mut encoder = proto::Connection::default();
    let put = cmd::Put::new(&body[..], opts()).unwrap();
    encoder.send(&put, &mut proto::WriteBuf::new()).unwrap();
    let put_len = encoder.bytes_in_flight() as u64;
    let results = A::put_pipelined(&mut client, vec![body.clone(); 20], opts()).await;
    assert!(results.iter().all(Result::is_err), "no reply ever came");
    let written = proxy.bytes_forwarded(Direction::Upstream);
    assert!(
        written <= MAX_UNANSWERED_SHORT_REPLY_BYTES as u64,
        "{written} bytes unanswered, past the cap"
    );
    assert_eq!(written, 4 * put_len, "as many puts as fit the cap");
}

/// A reply that came in time is never taken for late. A pipeline's reads
/// wait for several replies at once (the socket's receive mark, see
/// `beanstalk_proto::read_low_water`); when the first reply comes alone and
/// the others much later, the read must not sleep through the first
/// one's deadline with that reply in the socket: it is read by then, and
/// the others get their own deadline from there.
pub async fn a_reply_held_below_the_read_mark_is_not_taken_for_late<A: Adapter>() {
    const PUTS: usize = 40;
    let read_timeout = Duration::from_millis(600);
    // The first reply comes in time; the others after the first one's
    // deadline but within their own, which starts when the first is read.
    let peer =
        FakePeer::answering_the_first_put_early(PUTS, read_timeout * 2 / 3, read_timeout * 4 / 3);
    let settings = Settings {
        read_timeout,
        ..Settings::default()
    };
    let mut client = connect_with::<A>(&peer.url(), settings).await;
    let bodies = (0..PUTS).map(|n| format!("job {n}").into_bytes()).collect();
    let receipts = A::put_pipelined(&mut client, bodies, opts()).await;
    let ids: Vec<u64> = receipts
        .into_iter()
        .map(|receipt| receipt.expect("every reply came within its deadline").id)
        .collect();
    assert_eq!(ids, (1..=PUTS as u64).collect::<Vec<_>>());
}

/// Pipelines whose replies come from another CPU: the server pinned to
/// CPU 0 and the test's thread to CPU 1, so reads wait for two replies at
/// most (`read_low_water::MOST_REPLIES_AWAITED_ACROSS_CPUS`). Batches of
/// small and of 60 KB puts, and a lone command after each, must never
/// wait for a reply that is not coming.
pub async fn pipelines_from_another_cpu_are_never_held_back<A: Adapter>() {
    let server = Server::start();
    crate::cpus::pin(server.pid(), 0);
    crate::cpus::pin_this_thread(1);
    let mut client = connect::<A>(&server.url()).await;
    let started = Instant::now();
    for round in 0..3 {
        let small = (0..5_000)
            .map(|n| format!("{round}:{n}").into_bytes())
            .collect();
        let receipts = A::put_pipelined(&mut client, small, opts()).await;
        assert!(
            receipts.iter().all(Result::is_ok),
            "round {round}, small puts"
        );
        let receipts = A::put_pipelined(&mut client, vec![vec![b'x'; 60_000]; 5], opts()).await;
        assert!(
            receipts.iter().all(Result::is_ok),
            "round {round}, large puts"
        );
        // Alone after the batches: its mark must be back to a byte.
        let id = client.put("alone", opts()).await.unwrap().id;
        client.delete(id).await.unwrap();
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "{took:?}: a read waited for replies not coming"
    );
    assert_eq!(server.stats_counter("cmd-put"), 3 * 5_006);
}

/// A hand-made pipeline of 60 KB puts through `send`/`recv`, replies cut
/// into one-byte pieces: with that many bytes in flight a read waits for
/// half the replies due from four of them, and must still never wait for
/// one that is not coming, down to the last reply and a small put after.
pub async fn hand_made_pipeline_of_large_puts<A: Adapter>() {
    const BODY: usize = 60_000;
    let (server, _proxy, mut client) = behind_one_byte_replies::<A>().await;
    for count in [4usize, 5, 8] {
        let started = Instant::now();
        let mut tokens = Vec::new();
        for i in 0..count {
            let put = cmd::Put::new(vec![b'a' + i as u8; BODY], opts()).unwrap();
            tokens.push(A::send(&mut client, &put).unwrap());
        }
        for token in tokens {
            let (got, reply) = A::recv(&mut client).await.unwrap();
            assert_eq!(got, token, "replies in send order");
            cmd::Put::from_response(reply).unwrap();
        }
        let elapsed = started.elapsed();
        assert!(
            elapsed < Duration::from_secs(2),
            "{count} puts took {elapsed:?}: a read waited for replies not coming"
        );
    }
    let id = client.put("alone", opts()).await.unwrap().id;
    client.delete(id).await.unwrap();
    assert_eq!(server.stats_counter("cmd-put"), 4 + 5 + 8 + 1);
}

/// A hand-made pipeline through `send`/`recv`: a sliding window of
/// reservations, never more than `WINDOW` jobs reserved or asked for, each
/// job deleted exactly once as its reservation arrives. Replies are cut
/// into one-byte pieces on the way, so replies straddle reads.
pub async fn sliding_window_pipeline<A: Adapter>() {
    const JOBS: usize = 500;
    const WINDOW: usize = 16;
    let (server, _proxy, mut client) = behind_one_byte_replies::<A>().await;
    client.use_tube("window").await.unwrap();
    client.watch("window").await.unwrap();
    client.ignore("default").await.unwrap();
    let bodies = (0..JOBS).map(|i| format!("job {i}").into_bytes()).collect();
    let receipts = A::put_pipelined(&mut client, bodies, opts()).await;
    assert!(receipts.iter().all(Result::is_ok));

    let reserve = cmd::ReserveWithTimeout::new(0).unwrap();
    let mut reserves = std::collections::VecDeque::new();
    for _ in 0..WINDOW {
        reserves.push_back(A::send(&mut client, &reserve).unwrap());
    }
    let (mut asked, mut deleted) = (WINDOW, 0);
    let mut seen = std::collections::BTreeSet::new();
    while deleted < JOBS {
        let (token, reply) = A::recv(&mut client).await.unwrap();
        if reserves.front() == Some(&token) {
            reserves.pop_front();
            let job = cmd::ReserveWithTimeout::from_response(reply).unwrap();
            assert!(seen.insert(job.id), "job {} reserved twice", job.id);
            // The delete goes before the next reserve, so the server never
            // holds more than `WINDOW` jobs for this connection.
            A::send(&mut client, &cmd::Delete::new(job.id)).unwrap();
            if asked < JOBS {
                reserves.push_back(A::send(&mut client, &reserve).unwrap());
                asked += 1;
            }
            assert!(reserves.len() <= WINDOW);
        } else {
            cmd::Delete::from_response(reply).unwrap();
            deleted += 1;
        }
    }
    assert!(reserves.is_empty());
    // Nothing is left in flight: the next command's reply is its own.
    assert_eq!(
        client
            .stats_tube("window")
            .await
            .unwrap()
            .current_jobs_ready,
        0
    );
    // A reserve that finds nothing ends the window cleanly.
    A::send(&mut client, &reserve).unwrap();
    let (_, reply) = A::recv(&mut client).await.unwrap();
    let empty = cmd::ReserveWithTimeout::from_response(reply);
    assert!(matches!(empty, Err(Error::TimedOut)), "{empty:?}");
    assert_eq!(server.stats_counter("cmd-delete"), JOBS as u64);
}

/// A hand-made pipeline's follow-up commands wait while 16 or more written
/// commands are unanswered and the replies come from another CPU (the
/// server works through the earlier commands first anyway), then leave
/// together, in one write, once fewer are unanswered. A peer of the
/// test's, pinned to the other CPU, answers at its own pace and watches
/// what arrives when.
pub async fn follow_ups_gather_while_the_server_is_busy<A: Adapter>() {
    follow_ups_with_the_peer_on::<A>(0).await;
}

/// On the client's own CPU the server runs only while the client sleeps,
/// so a hold would let it run out of work: follow-ups go at once.
pub async fn follow_ups_go_at_once_from_the_same_cpu<A: Adapter>() {
    follow_ups_with_the_peer_on::<A>(1).await;
}

/// 20 deletes written, then five follow-ups, one per reply, with a peer on
/// `peer_cpu` and the client on CPU 1: held while 16 are unanswered if
/// the CPUs differ, written at once if not.
async fn follow_ups_with_the_peer_on<A: Adapter>(peer_cpu: usize) {
    const WRITTEN: u64 = 20;
    const FOLLOW_UPS: std::ops::RangeInclusive<u64> = 101..=105;
    let held = peer_cpu != 1;
    let peer = FakePeer::start(move |stream| {
        use std::io::{ErrorKind, Read, Write};
        crate::cpus::pin_this_thread(peer_cpu);
        let deletes = |ids: std::ops::RangeInclusive<u64>| -> Vec<u8> {
            ids.flat_map(|id| format!("delete {id}\r\n").into_bytes())
                .collect()
        };
        let mut chunk = [0u8; 4096];
        let mut read_exactly = |stream: &mut std::net::TcpStream, expected: &[u8]| {
            let mut received = Vec::new();
            while received.len() < expected.len() {
                let n = stream.read(&mut chunk).unwrap();
                assert!(n > 0, "closed early");
                received.extend_from_slice(&chunk[..n]);
            }
            assert_eq!(
                String::from_utf8_lossy(&received),
                String::from_utf8_lossy(expected)
            );
        };
        // A first exchange: the client looks where replies come from from
        // its second read on.
        read_exactly(stream, b"delete 999\r\n");
        stream.write_all(b"NOT_FOUND\r\n").unwrap();
        read_exactly(stream, &deletes(1..=WRITTEN));
        // Four answered: 16 written commands are still unanswered.
        stream.write_all(&b"DELETED\r\n".repeat(4)).unwrap();
        if held {
            stream
                .set_read_timeout(Some(Duration::from_millis(300)))
                .unwrap();
            let mut byte = [0u8; 64];
            match stream.read(&mut byte) {
                Err(error)
                    if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Ok(n) => panic!(
                    "written while 16 were unanswered: {:?}",
                    String::from_utf8_lossy(&byte[..n])
                ),
                Err(error) => panic!("reading: {error}"),
            }
            stream.set_read_timeout(None).unwrap();
        } else {
            read_exactly(stream, &deletes(101..=104));
        }
        // A fifth answer brings it to 15: what is queued leaves at once.
        stream.write_all(b"DELETED\r\n").unwrap();
        if held {
            let all = deletes(FOLLOW_UPS);
            let n = stream.read(&mut chunk).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&chunk[..n]),
                String::from_utf8_lossy(&all),
                "the follow-ups, in one write"
            );
        } else {
            read_exactly(stream, &deletes(105..=105));
        }
        let rest = WRITTEN as usize - 5 + FOLLOW_UPS.count();
        stream.write_all(&b"DELETED\r\n".repeat(rest)).unwrap();
    });
    crate::cpus::pin_this_thread(1);
    let mut client = connect::<A>(&peer.url()).await;
    A::send(&mut client, &cmd::Delete::new(999)).unwrap();
    let (_, reply) = A::recv(&mut client).await.unwrap();
    assert!(matches!(
        cmd::Delete::from_response(reply),
        Err(Error::NotFound)
    ));
    for id in 1..=WRITTEN {
        A::send(&mut client, &cmd::Delete::new(id)).unwrap();
    }
    let mut replies = 0;
    for follow_up in FOLLOW_UPS {
        let (_, reply) = A::recv(&mut client).await.unwrap();
        cmd::Delete::from_response(reply).unwrap();
        replies += 1;
        A::send(&mut client, &cmd::Delete::new(follow_up)).unwrap();
    }
    while replies < WRITTEN as usize + FOLLOW_UPS.count() {
        let (_, reply) = A::recv(&mut client).await.unwrap();
        cmd::Delete::from_response(reply).unwrap();
        replies += 1;
    }
    assert_eq!(peer.connections(), 1);
}

/// With many commands in flight, a read waits for a batch of replies (the
/// socket's receive low-water mark), but only for replies sure to come:
/// those ahead of a waiting `reserve` arrive while it waits, even when the
/// commands queued behind it would call for a batch.
pub async fn replies_ahead_of_a_waiting_reserve_are_not_held_back<A: Adapter>() {
    // Three replies of 15 bytes: less than a batch, which a client that
    // counted the 200 commands behind the reserve would wait for.
    const AHEAD: usize = 3;
    const BEHIND: usize = 200;
    let server = Server::start();
    // Held back, the replies ahead would come only when a read gives up
    // waiting (a blocking read returns what it has at its timeout) or
    // fail with this timeout.
    let settings = Settings {
        read_timeout: Duration::from_secs(3),
        ..Settings::default()
    };
    let mut client = connect_with::<A>(&server.url(), settings).await;
    let use_tube = cmd::Use::new("waiting").unwrap();
    let ahead: Vec<Token> = (0..AHEAD)
        .map(|_| A::send(&mut client, &use_tube).unwrap())
        .collect();
    let reserve = A::send(&mut client, &cmd::Reserve).unwrap();
    let behind: Vec<Token> = (0..BEHIND)
        .map(|_| A::send(&mut client, &use_tube).unwrap())
        .collect();
    let started = Instant::now();
    for token in &ahead {
        let (answered, reply) = A::recv(&mut client)
            .await
            .expect("a reply ahead of the waiting reserve");
        assert_eq!(answered, *token);
        assert!(matches!(reply, Response::Using(_)), "{reply:?}");
    }
    assert!(
        started.elapsed() < settings.read_timeout / 2,
        "replies ahead of the reserve were held back for {:?}",
        started.elapsed()
    );
    // Only now is there a job for the reserve.
    let mut producer = connect::<A>(&server.url()).await;
    let id = producer.put(&b"at last"[..], opts()).await.unwrap().id;
    let (answered, reply) = A::recv(&mut client).await.unwrap();
    assert_eq!(answered, reserve);
    assert_eq!(cmd::Reserve::from_response(reply).unwrap().id, id);
    for token in &behind {
        let (answered, reply) = A::recv(&mut client).await.unwrap();
        assert_eq!(answered, *token);
        assert!(matches!(reply, Response::Using(_)), "{reply:?}");
    }
}

/// Replies delivered one byte at a time give the same results.
pub async fn one_byte_chunks<A: Adapter>() {
    let (_server, _proxy, mut client) = behind_one_byte_replies::<A>().await;
    let id = client.put(&b"drip fed"[..], opts()).await.unwrap().id;
    let job = client.reserve().await.unwrap();
    assert_eq!((job.id, &job.body[..]), (id, &b"drip fed"[..]));
    let stats = client.stats_job(id).await.unwrap();
    assert_eq!((stats.id, stats.state), (id, JobState::Reserved));
    assert!(client.list_tubes().await.unwrap().contains("default"));
    let receipts = A::put_pipelined(&mut client, vec![b"a".to_vec(); 50], opts()).await;
    assert!(receipts.iter().all(Result::is_ok));
}

/// A server that stops answering yields a timeout within the configured
/// time plus a small margin, and the connection is closed.
pub async fn stalled_server_times_out<A: Adapter>() {
    let server = Server::start();
    let proxy = FaultProxy::start(&server.addr(), FaultPlan::new());
    let settings = Settings {
        read_timeout: Duration::from_millis(300),
        ..Settings::default()
    };
    let mut client = connect_with::<A>(&proxy.url(), settings).await;
    client.put(&b"x"[..], opts()).await.unwrap();
    proxy.stall_now();
    let started = Instant::now();
    let result = client.put(&b"y"[..], opts()).await;
    let waited = started.elapsed();
    let error = result.unwrap_err();
    assert!(matches!(error, Error::Timeout(_)), "{error}");
    assert!(error.outcome_unknown(), "a put that timed out may exist");
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_millis(1300),
        "{waited:?}"
    );
    assert!(!A::is_open(&client));
    proxy.resume();
    // A late reply is never taken for the answer to a later command.
    assert!(matches!(
        client.stats().await,
        Err(Error::Command(CommandError::Broken(_)))
    ));
}

/// A timer armed for an earlier command (the 300 ms read timeout of
/// `watch`) fires while the server legitimately holds
/// `reserve-with-timeout 1` for a second: the wait goes on, and the
/// server's `TIMED_OUT` is what the caller sees. Clients that keep one
/// timer armed from command to command must look again when it fires.
pub async fn an_earlier_deadline_does_not_cut_a_longer_wait_short<A: Adapter>() {
    let server = Server::start();
    let settings = Settings {
        read_timeout: Duration::from_millis(300),
        ..Settings::default()
    };
    let mut client = connect_with::<A>(&server.url(), settings).await;
    client.watch("empty").await.unwrap();
    client.ignore("default").await.unwrap();
    let started = Instant::now();
    let result = client.reserve_with_timeout(1).await;
    assert!(matches!(result, Err(Error::TimedOut)), "{result:?}");
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert!(A::is_open(&client));
    // The client keeps working, and so does its timer.
    assert_eq!(client.watch("other").await.unwrap(), 2);
}

/// After a command under the 5 s default, whose deadline may still be
/// armed, a call with a 200 ms timeout still gives up after 200 ms.
pub async fn a_later_shorter_deadline_holds<A: Adapter>() {
    let server = Server::start();
    let mut client = connect::<A>(&server.url()).await;
    client.watch("empty").await.unwrap();
    client.ignore("default").await.unwrap();
    let started = Instant::now();
    let result = A::reserve_within(&mut client, Duration::from_millis(200)).await;
    assert!(matches!(result, Err(Error::Timeout(_))), "{result:?}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(190) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
}

/// A large put on a slow but steady link goes through: the read timeout
/// counts from when the server can answer, not from when the kernel took
/// the last bytes into a send buffer that holds megabytes and drains for
/// seconds (the put used to fail with the 1 s read timeout). The write
/// timeout bounds how long nothing moves.
pub async fn a_large_put_on_a_slow_but_steady_link_does_not_time_out<A: Adapter>() {
    let (server, proxy) = slow_link_for_large_jobs();
    slow_put_goes_through::<A>(&proxy.url(), Duration::from_secs(2), 4 << 20).await;
    drop(server);
}

/// Through the slow link at `url`, a client with a 1 s read timeout and
/// `write_timeout` puts `bytes`: it goes through, slowly.
async fn slow_put_goes_through<A: Adapter>(url: &str, write_timeout: Duration, bytes: usize) {
    let settings = Settings {
        read_timeout: Duration::from_secs(1),
        write_timeout,
        max_job_size: LARGE_JOB_LIMIT,
        ..Settings::default()
    };
    let mut client = connect_with::<A>(url, settings).await;
    a_put_goes_through_slowly(&mut client, bytes).await;
}

/// A write blocked on a full send buffer is woken only once a good part
/// of it has drained (on TCP, a third or so of up to 4 MB): through a
/// link slower than that part per write timeout, tokio's client took the
/// write for stuck though bytes never stopped moving, and a 6 MB put
/// through a 1.6 MB/s link failed with a 300 ms write timeout after
/// 0.3 s. While what the kernel holds keeps shrinking, the write waits
/// again. (The other clients write again when the timeout fires, which
/// the kernel takes as soon as any room is free.)
pub async fn a_write_draining_a_full_send_buffer_does_not_time_out<A: Adapter>() {
    let (server, proxy) = slow_link_for_large_jobs();
    slow_put_goes_through::<A>(&proxy.url(), Duration::from_millis(300), 6_000_000).await;
    drop(server);
}

/// The extension for bytes still leaving belongs to the command they
/// are part of: a `stats` the server got whole at once, whose reply never
/// comes, is late one read timeout after the flush, though a large put
/// pipelined behind it still drains (here through a slow link that lets
/// no reply back).
pub async fn a_delivered_command_is_late_while_later_ones_still_leave<A: Adapter>() {
    let server = Server::builder().max_job_size(LARGE_JOB_LIMIT).start();
    let plan = FaultPlan::new()
        .delay(Direction::Upstream, Duration::from_millis(10))
        .stall_after(Direction::Downstream, 0);
    let proxy = FaultProxy::start(&server.addr(), plan);
    // The flush of the put (what the send buffer did not take at once)
    // plus one read timeout; the whole drain is about 2.5 s.
    stats_late_while_a_later_put_leaves::<A>(&proxy.url(), Duration::from_millis(2200), 4 << 20)
        .await;
    drop(server);
}

/// The scenario of [`a_delivered_command_is_late_while_later_ones_still_leave`]
/// and its Unix socket twin: through the link at `url`, a `stats` and a
/// put of `put_len` bytes behind it are sent, and the `stats` fails with
/// a timeout within `late_within`.
async fn stats_late_while_a_later_put_leaves<A: Adapter>(
    url: &str,
    late_within: Duration,
    put_len: usize,
) {
    let settings = Settings {
        read_timeout: Duration::from_secs(1),
        write_timeout: Duration::from_secs(5),
        max_job_size: LARGE_JOB_LIMIT,
        ..Settings::default()
    };
    let mut client = connect_with::<A>(url, settings).await;
    A::send(&mut client, &cmd::Stats).unwrap();
    let put = cmd::Put::new(vec![b'x'; put_len], opts()).unwrap();
    A::send(&mut client, &put).unwrap();
    let started = Instant::now();
    let stats = A::recv(&mut client).await;
    let waited = started.elapsed();
    assert!(matches!(stats, Err(Error::Timeout(_))), "{stats:?}");
    assert!(
        waited < late_within,
        "the stats reply waited {waited:?} for the put's bytes"
    );
}

/// [`a_delivered_command_is_late_while_later_ones_still_leave`] on a Unix
/// socket, whose kernel count of what the peer has not read is memory, not
/// bytes: each buffer queued costs its length plus 576 bytes or more (768
/// for the 7 bytes of a lone `stats`), and one the peer has read in part
/// counts whole. A 100 KB put behind the `stats` fits in the send buffer
/// at once, and leaves 16 KiB every 750 ms: at the stats' deadline the
/// first 36.5 KB buffer, the `stats` and the put's first bytes, is read
/// only in part, so what is left counts more than the put's bytes although
/// the `stats` is delivered.
pub async fn a_delivered_command_is_late_while_later_ones_still_leave_on_a_unix_socket<
    A: Adapter,
>() {
    let (server, proxy) = unix_link_delivering_no_reply();
    // One read timeout: the send buffer takes the put at once. (Extended
    // once at 1 s, the deadline would pass again at 2 s.)
    stats_late_while_a_later_put_leaves::<A>(&proxy.url(), UNIX_STATS_LATE_WITHIN, UNIX_LATER_PUT)
        .await;
    drop(server);
}

/// [`a_large_put_on_a_slow_but_steady_link_does_not_time_out`] on a Unix
/// socket ([`slow_unix_link_for_large_jobs`]).
pub async fn a_large_put_on_a_slow_but_steady_unix_socket_does_not_time_out<A: Adapter>() {
    let (server, proxy) = slow_unix_link_for_large_jobs();
    slow_put_goes_through::<A>(&proxy.url(), Duration::from_secs(2), UNIX_LARGE_PUT).await;
    drop(server);
}

/// The most a job may take for [`slow_link_for_large_jobs`]: 8 MiB.
pub const LARGE_JOB_LIMIT: u32 = 8 << 20;

/// The put behind a `stats` in the Unix-socket scenarios: large enough to
/// fill more than one of the kernel's buffers (36.5 KB each), small
/// enough that the send buffer (about 208 KB of buffer memory by default)
/// takes it at once.
pub const UNIX_LATER_PUT: usize = 100_000;

/// How soon a `stats` with a [`UNIX_LATER_PUT`] behind it, under a 1 s
/// read timeout, is late through [`unix_link_delivering_no_reply`]: a
/// deadline extended once more passes at 2 s.
pub const UNIX_STATS_LATE_WITHIN: Duration = Duration::from_millis(1600);

/// The put of [`slow_unix_link_for_large_jobs`]: 320 KiB, more than the
/// send buffer holds.
pub const UNIX_LARGE_PUT: usize = 320 << 10;

/// A server on a Unix socket taking jobs of up to [`LARGE_JOB_LIMIT`],
/// behind a proxy on a Unix socket that lets the client's bytes through at
/// 16 KiB every 750 ms and never lets a reply back. The proxy reads 16 KiB
/// at a time, so the kernel's first buffer of a large write (36.5 KB) is
/// read whole only at the third read, 1.5 s in.
pub fn unix_link_delivering_no_reply() -> (Server, FaultProxy) {
    let server = Server::builder()
        .unix_socket()
        .max_job_size(LARGE_JOB_LIMIT)
        .start();
    let plan = FaultPlan::new()
        .delay(Direction::Upstream, Duration::from_millis(750))
        .stall_after(Direction::Downstream, 0);
    let proxy = FaultProxy::start_unix(&server.addr(), plan);
    (server, proxy)
}

/// A server on a Unix socket taking jobs of up to [`LARGE_JOB_LIMIT`],
/// behind a proxy on a Unix socket that lets the client's bytes through at
/// about 110 KB/s (16 KiB every 150 ms). A Unix socket's send buffer holds
/// about 208 KB by default, not the megabytes of TCP on loopback, so this
/// link is slower than [`slow_link_for_large_jobs`]: a full buffer takes
/// about 2 s to drain, twice a 1 s read timeout.
pub fn slow_unix_link_for_large_jobs() -> (Server, FaultProxy) {
    let server = Server::builder()
        .unix_socket()
        .max_job_size(LARGE_JOB_LIMIT)
        .start();
    let slow = FaultPlan::new().delay(Direction::Upstream, Duration::from_millis(150));
    let proxy = FaultProxy::start_unix(&server.addr(), slow);
    (server, proxy)
}

/// A server taking jobs of up to [`LARGE_JOB_LIMIT`], behind a proxy that
/// lets the client's bytes through at about 1.6 MB/s (16 KiB every 10 ms).
pub fn slow_link_for_large_jobs() -> (Server, FaultProxy) {
    let server = Server::builder().max_job_size(LARGE_JOB_LIMIT).start();
    let slow = FaultPlan::new().delay(Direction::Upstream, Duration::from_millis(10));
    let proxy = FaultProxy::start(&server.addr(), slow);
    (server, proxy)
}

/// Puts `bytes` through `client` and checks that it went through, slowly.
///
/// # Panics
/// If the put fails, or takes under a second (the link was not slow).
pub async fn a_put_goes_through_slowly<C: AsyncCommands>(client: &mut C, bytes: usize) {
    let body = vec![b'x'; bytes];
    let started = Instant::now();
    let result = client.put(&body[..], opts()).await;
    let waited = started.elapsed();
    assert!(result.is_ok(), "{result:?} after {waited:?}");
    assert!(
        waited > Duration::from_secs(1),
        "the link was not slow: {waited:?}"
    );
}

/// The write timeout bounds how long a write makes no progress, not a
/// whole flush: 30 MB of pipelined puts, let through at about 8 MB/s,
/// take more than twice the 1 s timeout and still go through. (The kernel
/// reports a socket writable again only once a good part of its send
/// buffer, up to 4 MB here, has drained: at 8 MB/s that takes about
/// 250 ms, so the timeout leaves room for a proxy slowed fourfold by a
/// busy machine.)
pub async fn a_slow_but_steady_write_does_not_time_out<A: Adapter>() {
    let server = Server::start();
    let slow = FaultPlan::new().delay(Direction::Upstream, Duration::from_millis(2));
    let proxy = FaultProxy::start(&server.addr(), slow);
    let settings = Settings {
        write_timeout: Duration::from_secs(1),
        ..Settings::default()
    };
    let mut client = connect_with::<A>(&proxy.url(), settings).await;
    let body = vec![b'x'; 60_000];
    let put = cmd::Put::new(&body[..], opts()).unwrap();
    let tokens: Vec<Token> = (0..500)
        .map(|_| A::send(&mut client, &put).unwrap())
        .collect();
    let started = Instant::now();
    for (n, token) in tokens.into_iter().enumerate() {
        let (answered, reply) = A::recv(&mut client).await.unwrap();
        assert_eq!(answered, token);
        cmd::Put::from_response(reply).unwrap();
        if n == 0 {
            // Everything is written before the first reply is read.
            let flushing = started.elapsed();
            assert!(flushing > Duration::from_secs(2), "{flushing:?}");
        }
    }
    assert!(A::is_open(&client));
}

/// Timeouts past what the clock can hold (`Duration::MAX`) mean no
/// timeout: they neither panic on the deadline arithmetic nor expire.
pub async fn unbounded_timeouts_mean_no_deadline<A: Adapter>() {
    let server = Server::start();
    let settings = Settings {
        read_timeout: Duration::MAX,
        write_timeout: Duration::MAX,
        ..Settings::default()
    };
    let mut client = connect_with::<A>(&server.url(), settings).await;
    let id = client.put(&b"unbounded"[..], opts()).await.unwrap().id;
    let job = A::reserve_within(&mut client, Duration::MAX).await.unwrap();
    assert_eq!(job.id, id);
    client.delete(id).await.unwrap();
    assert!(matches!(
        client.reserve_with_timeout(0).await,
        Err(Error::TimedOut)
    ));
    assert!(A::is_open(&client));
}

/// A zero timeout, for the connection or for one call, is refused with a
/// typed error before anything is sent: no reply could meet it, so the
/// command could only be written and given up with its outcome unknown.
pub async fn zero_timeouts_are_refused_before_anything_is_sent<A: Adapter>() {
    let server = Server::start();
    for (which, settings) in [
        (
            "read",
            Settings {
                read_timeout: Duration::ZERO,
                ..Settings::default()
            },
        ),
        (
            "write",
            Settings {
                write_timeout: Duration::ZERO,
                ..Settings::default()
            },
        ),
    ] {
        let refused = A::connect(&server.url(), settings).await.err();
        assert!(
            matches!(
                refused,
                Some(Error::Command(CommandError::ZeroTimeout { which: w })) if w == which
            ),
            "{which}: {refused:?}"
        );
    }
    let mut client = connect::<A>(&server.url()).await;
    client.watch("zero").await.unwrap();
    client.ignore("default").await.unwrap();
    let refused = A::reserve_within(&mut client, Duration::ZERO).await;
    assert!(
        matches!(
            refused,
            Err(Error::Command(CommandError::ZeroTimeout { which: "call" }))
        ),
        "{refused:?}"
    );
    assert!(A::is_open(&client));
    // Had the reserve gone out, it would be waiting on the server and would
    // take this job; the connection answers the next command instead.
    let mut producer = connect::<A>(&server.url()).await;
    producer.use_tube("zero").await.unwrap();
    let id = producer.put(&b"z"[..], opts()).await.unwrap().id;
    assert_eq!(client.reserve_with_timeout(0).await.unwrap().id, id);
    client.delete(id).await.unwrap();
}

/// A timeout below a millisecond waits a millisecond
/// ([`proto::options::MIN_TIMEOUT`]), in every adapter alike.
pub async fn sub_millisecond_timeouts_wait_a_millisecond<A: Adapter>() {
    let server = Server::start();
    let settings = Settings {
        read_timeout: Duration::from_micros(1),
        write_timeout: Duration::from_micros(1),
        ..Settings::default()
    };
    assert!(A::connect(&server.url(), settings).await.is_ok());
    let mut client = connect::<A>(&server.url()).await;
    client.watch("empty").await.unwrap();
    client.ignore("default").await.unwrap();
    let started = Instant::now();
    let result = A::reserve_within(&mut client, Duration::from_micros(1)).await;
    let waited = started.elapsed();
    assert!(
        matches!(result, Err(Error::Timeout(limit)) if limit == proto::options::MIN_TIMEOUT),
        "{result:?}"
    );
    assert!(waited >= proto::options::MIN_TIMEOUT, "{waited:?}");
}

/// A connection cut in the middle of a reply fails every call in flight.
pub async fn killed_mid_reply<A: Adapter>() {
    let server = Server::start();
    // Each INSERTED reply here is 11 or 12 bytes; cut inside the 40th or so.
    let proxy = FaultProxy::start(
        &server.addr(),
        FaultPlan::new().cut_after(Direction::Downstream, 440),
    );
    let mut client = connect::<A>(&proxy.url()).await;
    let results = A::put_pipelined(&mut client, vec![b"z".to_vec(); 100], opts()).await;
    let ok = results.iter().take_while(|r| r.is_ok()).count();
    assert!(ok > 0 && ok < 100, "{ok} puts answered before the cut");
    for result in &results[ok..] {
        let error = result.as_ref().unwrap_err();
        assert!(error.is_connection_error(), "{error}");
    }
    assert!(!A::is_open(&client));
    assert!(client.stats().await.unwrap_err().is_connection_error());
}

/// Connection refused is a clear I/O error.
pub async fn connection_refused<A: Adapter>() {
    // Bound but not listening: connections are refused, and while it is
    // held no server of a test running alongside can take the port (a
    // listener bound and dropped would leave the port free to be reused).
    let closed = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let loopback: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    closed.bind(&loopback.into()).unwrap();
    let address = closed.local_addr().unwrap().as_socket().unwrap();
    match A::connect(&address.to_string(), Settings::default()).await {
        Err(Error::Io(error)) => assert_eq!(error.kind(), std::io::ErrorKind::ConnectionRefused),
        Err(other) => panic!("expected connection refused, got {other}"),
        Ok(_) => panic!("connected to a closed port"),
    }
    assert!(matches!(
        A::connect("beanstalk://host:notaport", Settings::default()).await,
        Err(Error::Address(_))
    ));
}

/// A server that accepts no connection (stopped, or swamped: its listen
/// backlog is full) fails the connect within the connect timeout, over a
/// Unix socket as over TCP; the blocking client used to wait on a Unix
/// socket until the server accepted, for ever if it never did.
pub async fn connect_to_a_server_accepting_nothing_times_out<A: Adapter>() {
    for listener in [FullBacklogListener::unix(), FullBacklogListener::tcp()] {
        let url = listener.url();
        let settings = Settings {
            connect_timeout: Duration::from_millis(300),
            ..Settings::default()
        };
        let started = Instant::now();
        // A blocking client's connect cannot be raced from here: a connect
        // that never returns fails the test binary instead of hanging it.
        let watchdog = HangWatchdog::arm(Duration::from_secs(10), format!("connect to {url}"));
        let connected = A::connect(url, settings).await;
        drop(watchdog);
        let took = started.elapsed();
        match connected {
            Err(error) => assert!(error.is_connection_error(), "{url}: {error}"),
            Ok(_) => panic!("{url}: connected to a server that accepts nothing"),
        }
        assert!(
            took < Duration::from_secs(3),
            "{url}: the connect took {took:?}"
        );
    }
}

/// Ends the whole test process, with a message, if it is not dropped
/// within its limit: for steps that cannot be raced with a timer.
struct HangWatchdog {
    disarmed: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl HangWatchdog {
    fn arm(limit: Duration, what: String) -> Self {
        use std::sync::atomic::Ordering;
        let disarmed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = std::sync::Arc::clone(&disarmed);
        std::thread::spawn(move || {
            let deadline = Instant::now() + limit;
            while Instant::now() < deadline {
                if flag.load(Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            if !flag.load(Ordering::SeqCst) {
                // Straight to the descriptor: the test harness captures
                // `eprintln!`, and its capture dies with the process.
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "{what}: still waiting after {limit:?}; ending the test process"
                );
                std::process::exit(101);
            }
        });
        Self { disarmed }
    }
}

impl Drop for HangWatchdog {
    fn drop(&mut self) {
        self.disarmed
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A pipeline of `use`, `put`, `delete` and `reserve-with-timeout 0` cut
/// at every byte offset, of the commands and of the replies: each reply
/// reaches its own command, and what each command reports matches what the
/// server did. A put reported done exists, byte for byte, in its tube; one
/// reported never sent does not; a delete likewise; every other failure
/// says its outcome is unknown. Nothing hangs (the read timeout bounds it).
pub async fn a_pipeline_cut_anywhere_reports_what_the_server_did<A: Adapter>() {
    let server = Server::start();
    let mut check = connect::<A>(&server.url()).await;
    let body = b"a\r\nput 0 0 1 1\r\nb\r\n\0".to_vec();
    for direction in [Direction::Upstream, Direction::Downstream] {
        let mut offset = 0;
        // Until a cut comes after the whole pipeline and its replies.
        loop {
            assert!(offset < 400, "{direction:?}: the pipeline never completed");
            let tube = format!("cut-{direction:?}-{offset}");
            let victim = check.put(&b"victim"[..], opts()).await.unwrap().id;
            let plan = FaultPlan::new().cut_after(direction, offset);
            let proxy = FaultProxy::start(&server.addr(), plan);
            let settings = Settings {
                read_timeout: Duration::from_secs(3),
                ..Settings::default()
            };
            let Ok(mut client) = A::connect(&proxy.url(), settings).await else {
                offset += 1;
                continue;
            };
            let put = cmd::Put::new(&body[..], opts()).unwrap();
            let sent = [
                A::send(&mut client, &cmd::Use::new(tube.as_str()).unwrap()),
                A::send(&mut client, &put),
                A::send(&mut client, &cmd::Delete::new(victim)),
                A::send(&mut client, &cmd::ReserveWithTimeout::new(0).unwrap()),
            ];
            let tokens: Vec<Token> = sent.into_iter().map(Result::unwrap).collect();
            let mut replies: Vec<Result<Response, Error>> = Vec::new();
            for token in &tokens {
                match A::recv(&mut client).await {
                    Ok((answered, reply)) => {
                        assert_eq!(answered, *token, "offset {offset}: a reply shifted");
                        replies.push(Ok(reply));
                    }
                    Err(error) => {
                        replies.push(Err(error));
                        break;
                    }
                }
            }
            drop(client);
            drop(proxy);
            // A command after the failure never got a reply: its outcome is
            // that of the failure (the connection broke with it in flight).
            let failure = replies.iter().find_map(|reply| reply.as_ref().err());
            let outcome_unknown = failure.is_some_and(Error::outcome_unknown);
            if let Some(error) = failure {
                assert!(
                    error.is_connection_error(),
                    "offset {offset}: {error} is not a connection error"
                );
            }
            let done = |index: usize| matches!(replies.get(index), Some(Ok(_)));
            let jobs = check
                .stats_tube(tube.as_str())
                .await
                .map_or(0, |stats| stats.total_jobs);
            match replies.get(1) {
                Some(Ok(reply)) => {
                    let id = cmd::Put::from_response(reply.clone()).unwrap().id;
                    let job = check.peek(id).await.unwrap();
                    let job = job.unwrap_or_else(|| panic!("offset {offset}: put done, no job"));
                    assert_eq!(job.body[..], body[..], "offset {offset}");
                    assert_eq!(jobs, 1, "offset {offset}: the job in its tube");
                }
                _ if !outcome_unknown => assert_eq!(jobs, 0, "offset {offset}: put not sent, done"),
                _ => assert!(jobs <= 1, "offset {offset}: {jobs} jobs"),
            }
            let victim_there = check.peek(victim).await.unwrap().is_some();
            if done(2) {
                let deleted = cmd::Delete::from_response(replies[2].as_ref().unwrap().clone());
                assert!(deleted.is_ok() && !victim_there, "offset {offset}: delete");
            } else if !outcome_unknown {
                assert!(victim_there, "offset {offset}: delete not sent, done");
            }
            if victim_there {
                check.delete(victim).await.unwrap();
            }
            if done(3) {
                let reserved =
                    cmd::ReserveWithTimeout::from_response(replies[3].as_ref().unwrap().clone());
                assert!(matches!(reserved, Err(Error::TimedOut)), "offset {offset}");
                break;
            }
            offset += 1;
        }
    }
}

/// A hand-made pipeline used in the wrong order gets clear answers:
/// - a `quit` sent with `send` reaches the server when its `recv` returns,
///   though it completes without a reply (it used to stay unwritten, so
///   the server kept the connection and the job it held);
/// - `recv` with nothing in flight is the caller's mistake, on a connection
///   that stays usable (it used to be a protocol error, which says the
///   connection is broken), and after `quit` it says the connection is
///   closed;
/// - after `reconnect`, whose pending replies are lost with the old
///   connection, no token handed out before is handed out again (tokens
///   used to start again at 0, so a later reply came back under the token
///   of a lost command).
pub async fn a_pipeline_misused_gets_clear_answers<A: Adapter>() {
    let server = Server::start();
    let mut client = connect::<A>(&server.url()).await;
    let nothing = A::recv(&mut client).await;
    assert!(
        matches!(nothing, Err(Error::Command(CommandError::NothingInFlight))),
        "{nothing:?}"
    );
    let answered = A::send(&mut client, &cmd::Stats).unwrap();
    assert_eq!(A::recv(&mut client).await.unwrap().0, answered);
    let drained = A::recv(&mut client).await;
    assert!(
        matches!(drained, Err(Error::Command(CommandError::NothingInFlight))),
        "{drained:?}"
    );
    assert!(A::is_open(&client));

    let put = cmd::Put::new(&b"lost"[..], opts()).unwrap();
    let handed_out = [
        answered,
        A::send(&mut client, &put).unwrap(),
        A::send(&mut client, &put).unwrap(),
    ];
    A::reconnect(&mut client).await.unwrap();
    let stats = A::send(&mut client, &cmd::Stats).unwrap();
    assert!(
        !handed_out.contains(&stats),
        "token {stats:?} handed out twice"
    );
    let (answered, reply) = A::recv(&mut client).await.unwrap();
    assert_eq!(answered, stats);
    cmd::Stats::from_response(reply).unwrap();

    let id = client.put(&b"held"[..], opts()).await.unwrap().id;
    assert_eq!(client.reserve_job(id).await.unwrap().id, id);
    let quit = A::send(&mut client, &cmd::Quit).unwrap();
    assert_eq!(
        A::recv(&mut client).await.unwrap(),
        (quit, Response::Closing)
    );
    // The server closes the connection, and the job it held is ready again.
    let mut check = connect::<A>(&server.url()).await;
    let deadline = Instant::now() + Duration::from_secs(3);
    while check.stats_job(id).await.unwrap().state != JobState::Ready {
        assert!(Instant::now() < deadline, "the server never saw the quit");
        std::thread::sleep(Duration::from_millis(5));
    }
    let after = A::recv(&mut client).await;
    assert!(
        matches!(after, Err(Error::Command(CommandError::Closed))),
        "{after:?}"
    );
}

/// Garbage from the peer is a protocol error and closes the connection.
pub async fn garbage_from_peer<A: Adapter>() {
    let peer = FakePeer::start(|stream| {
        use std::io::{Read, Write};
        let mut line = [0u8; 64];
        let _ = stream.read(&mut line);
        let _ = stream.write_all(b"HELLO WORLD\r\n");
    });
    let mut client = connect::<A>(&peer.url()).await;
    let error = client.stats().await.unwrap_err();
    assert!(matches!(error, Error::Protocol(_)), "{error}");
    assert!(!A::is_open(&client));
    assert!(matches!(
        client.stats().await,
        Err(Error::Command(CommandError::Broken(_)))
    ));
}

/// After kill -9 and a restart on the same binlog, every job acknowledged
/// with INSERTED is there with its id, and a reconnected client goes on,
/// still using and watching its tubes.
pub async fn restart_keeps_acknowledged_jobs<A: Adapter>() {
    let mut server = Server::builder().binlog_temp().start();
    let mut client = connect::<A>(&server.url()).await;
    client.use_tube("durable").await.unwrap();
    client.watch("durable").await.unwrap();
    client.ignore("default").await.unwrap();
    let bodies: Vec<Vec<u8>> = (0..200)
        .map(|i| format!("durable-{i}").into_bytes())
        .collect();
    let receipts = A::put_pipelined(&mut client, bodies.clone(), opts()).await;
    let ids: Vec<u64> = receipts.into_iter().map(|r| r.unwrap().id).collect();
    server.kill9();
    assert!(client.stats().await.unwrap_err().is_connection_error());
    server.restart();
    A::reconnect(&mut client).await.unwrap();
    assert_eq!(client.list_tube_used().await.unwrap(), "durable");
    let watched = client.list_tubes_watched().await.unwrap();
    assert_eq!(watched.iter().collect::<Vec<_>>(), ["durable"]);
    for (id, body) in ids.iter().zip(&bodies) {
        let job = client
            .peek(*id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("job {id} lost"));
        assert_eq!(job.body[..], body[..]);
    }
    let next = client.put(&b"after restart"[..], opts()).await.unwrap().id;
    assert!(
        next > *ids.last().unwrap(),
        "ids continue after the binlog's"
    );
    assert_eq!(client.reserve_with_timeout(0).await.unwrap().id, ids[0]);
}

/// Expands into one `#[test]` per suite function, for an [`Adapter`] and a
/// runtime's `block_on`.
///
/// ```ignore
/// beanstalk_test_support::conformance_suite!(MyAdapter, |f| my_runtime::block_on(f));
/// ```
#[macro_export]
macro_rules! conformance_suite {
    ($adapter:ty, $block_on:expr) => {
        $crate::conformance_suite!(@tests $adapter, $block_on,
            put_reserve_delete,
            unix_socket,
            binary_empty_and_max_bodies,
            tubes_and_lists,
            outcomes_and_not_found,
            bury_and_kick,
            pause_tube,
            deadline_soon,
            job_too_big,
            a_job_past_the_clients_limit_keeps_the_connection,
            draining,
            stats_reflect_activity,
            bad_input_never_reaches_the_server,
            quit_closes,
            pipelined_puts,
            pipelined_large_puts,
            pipelined_puts_stop_at_the_unanswered_cap,
            a_reply_held_below_the_read_mark_is_not_taken_for_late,
            hand_made_pipeline_of_large_puts,
            pipelines_from_another_cpu_are_never_held_back,
            sliding_window_pipeline,
            follow_ups_gather_while_the_server_is_busy,
            follow_ups_go_at_once_from_the_same_cpu,
            replies_ahead_of_a_waiting_reserve_are_not_held_back,
            one_byte_chunks,
            stalled_server_times_out,
            an_earlier_deadline_does_not_cut_a_longer_wait_short,
            a_later_shorter_deadline_holds,
            a_slow_but_steady_write_does_not_time_out,
            a_large_put_on_a_slow_but_steady_link_does_not_time_out,
            a_write_draining_a_full_send_buffer_does_not_time_out,
            a_delivered_command_is_late_while_later_ones_still_leave,
            a_large_put_on_a_slow_but_steady_unix_socket_does_not_time_out,
            a_delivered_command_is_late_while_later_ones_still_leave_on_a_unix_socket,
            unbounded_timeouts_mean_no_deadline,
            zero_timeouts_are_refused_before_anything_is_sent,
            sub_millisecond_timeouts_wait_a_millisecond,
            killed_mid_reply,
            connection_refused,
            connect_to_a_server_accepting_nothing_times_out,
            a_pipeline_cut_anywhere_reports_what_the_server_did,
            a_pipeline_misused_gets_clear_answers,
            garbage_from_peer,
            restart_keeps_acknowledged_jobs,
        );
    };
    (@tests $adapter:ty, $block_on:expr, $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let block_on = $block_on;
                block_on($crate::conformance::$name::<$adapter>());
            }
        )*
    };
}
