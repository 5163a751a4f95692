//! One test suite for the async adapters' shared handles, where the driver
//! reads a pipeline's replies in batches (the socket's receive low-water
//! mark, see `beanstalk_proto::read_low_water`): the batch must never
//! hold a reply back, whether the pipeline drains or the server goes away
//! in the middle of it.
//!
//! An adapter's test file implements [`SharedAdapter`] on a type of its
//! own and expands [`shared_suite!`](macro@crate::shared_suite) with it
//! and its runtime's `block_on`. The callers run side by side in the test's
//! own future, polled together, so no runtime's spawn is needed; the adapter's
//! `connect_with` starts its driver as it does for any caller.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use proto::{AsyncCommands, Error, Options, PutOptions};

use crate::{Direction, FaultPlan, FaultProxy, Server};

/// What the suite needs of an adapter's shared handle.
pub trait SharedAdapter {
    /// The adapter's shared handle, driven through [`AsyncCommands`]; each
    /// clone is another caller on the same connection.
    type Handle: AsyncCommands + Clone + Send;

    /// Connects to `address` and starts the connection's driver.
    fn connect_with(
        address: &str,
        options: Options,
    ) -> impl Future<Output = Result<Self::Handle, Error>> + Send;
}

/// Callers pipelining at once: enough for the driver to wait for batches
/// (32 or more short replies due).
const CALLERS: usize = 48;

/// Polls every future until all are done, and returns their outputs in
/// order.
async fn all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut running: Vec<Option<Pin<Box<F>>>> =
        futures.into_iter().map(|f| Some(Box::pin(f))).collect();
    let mut outputs: Vec<Option<F::Output>> = running.iter().map(|_| None).collect();
    poll_fn(|cx| {
        for (slot, output) in running.iter_mut().zip(&mut outputs) {
            if let Some(future) = slot {
                if let Poll::Ready(done) = future.as_mut().poll(cx) {
                    *output = Some(done);
                    *slot = None;
                }
            }
        }
        if running.iter().all(Option::is_none) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

async fn connect<A: SharedAdapter>(address: &str, read_timeout: Duration) -> A::Handle {
    A::connect_with(address, Options::default().read_timeout(read_timeout))
        .await
        .expect("shared handle connects")
}

/// A large put on a slow but steady link goes through a shared handle,
/// whose driver used to start the oldest command's deadline when it became
/// the oldest, before its bytes were even written, and failed it with the
/// 1 s read timeout while they were still leaving (see the conformance
/// suite's `a_large_put_on_a_slow_but_steady_link_does_not_time_out`).
pub async fn a_large_put_on_a_slow_but_steady_link_does_not_time_out<A: SharedAdapter>() {
    let (server, proxy) = crate::conformance::slow_link_for_large_jobs();
    slow_put_goes_through::<A>(&proxy.url(), Duration::from_secs(2), 4 << 20).await;
    drop(server);
}

/// Through the slow link at `url`, a shared handle with a 1 s read timeout
/// and `write_timeout` puts `bytes`: it goes through, slowly.
async fn slow_put_goes_through<A: SharedAdapter>(url: &str, write_timeout: Duration, bytes: usize) {
    use crate::conformance::{LARGE_JOB_LIMIT, a_put_goes_through_slowly};
    let options = Options::default()
        .read_timeout(Duration::from_secs(1))
        .write_timeout(write_timeout)
        .max_job_size(LARGE_JOB_LIMIT);
    let mut client = A::connect_with(url, options)
        .await
        .expect("shared handle connects");
    a_put_goes_through_slowly(&mut client, bytes).await;
}

/// A driver's write blocked on a full send buffer is woken only once a
/// good part of it has drained: through a link slower than that part per
/// write timeout, tokio's driver took the write for stuck though bytes
/// never stopped moving (see the conformance suite's
/// `a_write_draining_a_full_send_buffer_does_not_time_out`).
pub async fn a_write_draining_a_full_send_buffer_does_not_time_out<A: SharedAdapter>() {
    let (server, proxy) = crate::conformance::slow_link_for_large_jobs();
    slow_put_goes_through::<A>(&proxy.url(), Duration::from_millis(300), 6_000_000).await;
    drop(server);
}

/// A `stats` the server got whole at once, whose reply never comes, is
/// late one read timeout on, though another caller's large put behind it
/// still leaves (through a slow link that lets no reply back): the bytes
/// still leaving are not its own.
pub async fn a_delivered_command_is_late_while_a_later_put_still_leaves<A: SharedAdapter>() {
    use crate::conformance::LARGE_JOB_LIMIT;
    let server = Server::builder().max_job_size(LARGE_JOB_LIMIT).start();
    let plan = FaultPlan::new()
        .delay(Direction::Upstream, Duration::from_millis(10))
        .stall_after(Direction::Downstream, 0);
    let proxy = FaultProxy::start(&server.addr(), plan);
    stats_late_while_a_later_put_leaves::<A>(&proxy.url(), Duration::from_millis(2200), 4 << 20)
        .await;
    drop(server);
}

/// The scenario of [`a_delivered_command_is_late_while_a_later_put_still_leaves`]
/// and its Unix socket twin: through the link at `url`, a
/// `stats` fails with a timeout within `late_within` while another
/// caller's put of `put_len` bytes still leaves behind it.
async fn stats_late_while_a_later_put_leaves<A: SharedAdapter>(
    url: &str,
    late_within: Duration,
    put_len: usize,
) {
    use crate::conformance::LARGE_JOB_LIMIT;
    let options = Options::default()
        .read_timeout(Duration::from_secs(1))
        .write_timeout(Duration::from_secs(5))
        .max_job_size(LARGE_JOB_LIMIT);
    let client = A::connect_with(url, options)
        .await
        .expect("shared handle connects");
    let started = Instant::now();
    let (mut first, mut second) = (client.clone(), client.clone());
    let stats = async move {
        let stats = first.stats().await;
        let waited = started.elapsed();
        assert!(matches!(stats, Err(Error::Timeout(_))), "{stats:?}");
        assert!(
            waited < late_within,
            "the stats reply waited {waited:?} for the put's bytes"
        );
    };
    let put = async move {
        let _ = second.put(vec![b'x'; put_len], PutOptions::default()).await;
    };
    all(vec![
        Box::pin(stats) as Pin<Box<dyn Future<Output = ()> + Send>>,
        Box::pin(put),
    ])
    .await;
}

/// [`a_large_put_on_a_slow_but_steady_link_does_not_time_out`] on a Unix
/// socket (see the conformance suite's
/// `a_large_put_on_a_slow_but_steady_unix_socket_does_not_time_out`).
pub async fn a_large_put_on_a_slow_but_steady_unix_socket_does_not_time_out<A: SharedAdapter>() {
    use crate::conformance::{UNIX_LARGE_PUT, slow_unix_link_for_large_jobs};
    let (server, proxy) = slow_unix_link_for_large_jobs();
    slow_put_goes_through::<A>(&proxy.url(), Duration::from_secs(2), UNIX_LARGE_PUT).await;
    drop(server);
}

/// [`a_delivered_command_is_late_while_a_later_put_still_leaves`] on a
/// Unix socket, whose kernel count of what the peer has not read is
/// memory, not bytes (see the conformance suite's
/// `a_delivered_command_is_late_while_later_ones_still_leave_on_a_unix_socket`).
pub async fn a_delivered_command_is_late_while_a_later_put_still_leaves_on_a_unix_socket<
    A: SharedAdapter,
>() {
    use crate::conformance::{
        UNIX_LATER_PUT, UNIX_STATS_LATE_WITHIN, unix_link_delivering_no_reply,
    };
    let (server, proxy) = unix_link_delivering_no_reply();
    stats_late_while_a_later_put_leaves::<A>(&proxy.url(), UNIX_STATS_LATE_WITHIN, UNIX_LATER_PUT)
        .await;
    drop(server);
}

/// How soon a reply in the client's socket must reach its caller: a
/// driver that picks it up only at a deadline is later by up to a read
/// timeout.
const PROMPT: Duration = Duration::from_millis(300);

/// A reply that comes after its deadline was extended for a put still
/// leaving reaches its caller as soon as it is in the socket, not when the
/// extended deadline passes. The link passes nothing for 1.3 read timeouts,
/// so at the first deadline the put's bytes are still in the client's
/// kernel (and on a Unix socket, partly unwritten), and its reply gets the
/// read timeout again; then the put goes through at once, and its reply
/// comes 0.7 read timeouts before the extended deadline. (On a steady
/// link, where the reply falls between two deadlines depends on the
/// machine's speed: the 4 MiB put of
/// [`a_large_put_on_a_slow_but_steady_link_does_not_time_out`] is answered
/// about 0.3 s before its third deadline here.) The async-std adapter's
/// driver read past the receive mark at the first deadline with a waker
/// that went nowhere, which smol's sockets kept instead of the driver's,
/// so the reply sat in the socket until the next deadline read it: 0.7 s
/// late. (async-std's sockets wake the waker they replace.)
pub async fn a_reply_after_a_deadline_extended_for_a_put_still_leaving_is_prompt<
    A: SharedAdapter,
>() {
    use crate::conformance::LARGE_JOB_LIMIT;
    let server = Server::builder().max_job_size(LARGE_JOB_LIMIT).start();
    // Far more than the proxy's receive window takes while it holds the put.
    a_reply_after_a_held_put_is_prompt::<A>(server, FaultProxy::start, 1 << 20).await;
}

/// [`a_reply_after_a_deadline_extended_for_a_put_still_leaving_is_prompt`]
/// on a Unix socket.
pub async fn a_reply_after_a_deadline_extended_for_a_put_still_leaving_is_prompt_on_a_unix_socket<
    A: SharedAdapter,
>() {
    use crate::conformance::{LARGE_JOB_LIMIT, UNIX_LARGE_PUT};
    let server = Server::builder()
        .unix_socket()
        .max_job_size(LARGE_JOB_LIMIT)
        .start();
    a_reply_after_a_held_put_is_prompt::<A>(server, FaultProxy::start_unix, UNIX_LARGE_PUT).await;
}

async fn a_reply_after_a_held_put_is_prompt<A: SharedAdapter>(
    server: Server,
    start_proxy: fn(&crate::Address, FaultPlan) -> FaultProxy,
    bytes: usize,
) {
    use crate::conformance::LARGE_JOB_LIMIT;
    let read_timeout = Duration::from_secs(1);
    let hold = read_timeout * 13 / 10;
    let plan = FaultPlan::new().hold_first(Direction::Upstream, hold);
    let proxy = start_proxy(&server.addr(), plan);
    let options = Options::default()
        .read_timeout(read_timeout)
        .write_timeout(hold * 4)
        .max_job_size(LARGE_JOB_LIMIT);
    let mut client = A::connect_with(&proxy.url(), options)
        .await
        .expect("shared handle connects");
    let started = Instant::now();
    let put = client.put(vec![b'x'; bytes], PutOptions::default()).await;
    let done = Instant::now();
    assert!(put.is_ok(), "{put:?} after {:?}", done - started);
    let at = |dir| {
        proxy
            .last_forwarded(dir)
            .expect("forwarded")
            .saturating_duration_since(started)
    };
    let (sent, replied) = (at(Direction::Upstream), at(Direction::Downstream));
    let waited = done - started;
    assert!(sent >= hold, "the link was not held: {sent:?}");
    assert!(
        waited < replied + PROMPT,
        "the put's last bytes went through at {sent:?}, its reply was in the socket at \
         {replied:?}, and its caller got it at {waited:?}"
    );
    drop(server);
}

/// Once a pipeline has drained, the driver's mark must come down: a lone
/// reply, fewer bytes than a batch, would otherwise never wake the driver
/// and its call would time out.
pub async fn a_draining_pipeline_stops_waiting_for_batches<A: SharedAdapter>() {
    const PUTS_EACH: usize = 4;
    let server = Server::start();
    // A reply held back fails its call with this timeout.
    let client = connect::<A>(&server.url(), Duration::from_secs(3)).await;
    let callers = (0..CALLERS).map(|caller| {
        let mut handle = client.clone();
        async move {
            for put in 0..PUTS_EACH {
                let body = format!("{caller}:{put}");
                handle.put(body, PutOptions::default()).await.unwrap();
            }
        }
    });
    all(callers.collect()).await;
    let mut lone = client.clone();
    lone.put("alone", PutOptions::default()).await.unwrap();
    let id = lone.put("alone", PutOptions::default()).await.unwrap().id;
    lone.delete(id).await.unwrap();
    assert_eq!(
        server.stats_counter("cmd-put"),
        (CALLERS * PUTS_EACH + 2) as u64
    );
}

/// A server gone mid-reply while the driver waits for a batch of replies
/// (fewer bytes left than the batch) fails every call at once with the
/// broken connection, not after the read timeout.
pub async fn a_connection_cut_mid_pipeline_fails_every_call_at_once<A: SharedAdapter>() {
    let server = Server::start();
    // Mid-way through a reply, after a few hundred have come.
    let proxy = FaultProxy::start(
        &server.addr(),
        FaultPlan::new().cut_after(Direction::Downstream, 4_003),
    );
    // A call that learnt of the cut only from its timeout would wait this.
    let client = connect::<A>(&proxy.url(), Duration::from_secs(5)).await;
    let started = Instant::now();
    let callers = (0..CALLERS).map(|caller| {
        let mut handle = client.clone();
        async move {
            let mut put = 0;
            loop {
                let body = format!("{caller}:{put}");
                match handle.put(body, PutOptions::default()).await {
                    Ok(_) => put += 1,
                    Err(error) => return (put, error),
                }
            }
        }
    });
    let mut put = 0;
    for (count, error) in all(callers.collect()).await {
        put += count;
        assert!(error.is_connection_error(), "{error}");
        assert!(!matches!(error, Error::Timeout(_)), "{error}");
    }
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(2), "{waited:?}");
    assert!(put > CALLERS, "replies came before the cut: {put}");
}

/// A few callers putting 60 KB each, a put at a time: the commands in
/// flight carry enough for the driver to wait for half the replies due
/// even when only four are due. With the replies cut into one-byte pieces
/// on the way, no round may wait for a reply that is not coming, and once
/// the large puts are answered a lone small one is not held back either.
pub async fn large_puts_from_a_few_callers_are_never_held_back<A: SharedAdapter>() {
    const LARGE_CALLERS: usize = 4;
    const PUTS_EACH: usize = 6;
    const BODY: usize = 60_000;
    let server = Server::start();
    let proxy = FaultProxy::start(
        &server.addr(),
        FaultPlan::new().one_byte_chunks(Direction::Downstream),
    );
    // A reply held back fails its call with this timeout.
    let client = connect::<A>(&proxy.url(), Duration::from_secs(3)).await;
    let started = Instant::now();
    let callers = (0..LARGE_CALLERS).map(|caller| {
        let mut handle = client.clone();
        async move {
            let mut last = None;
            for put in 0..PUTS_EACH {
                let body = vec![b'a' + (caller * PUTS_EACH + put) as u8 % 26; BODY];
                let id = handle
                    .put(body.clone(), PutOptions::default())
                    .await
                    .unwrap_or_else(|error| panic!("caller {caller}, put {put}: {error}"))
                    .id;
                last = Some((id, body));
            }
            last.unwrap()
        }
    });
    let lasts = all(callers.collect()).await;
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(2), "{waited:?}");
    let mut lone = client.clone();
    for (id, body) in lasts {
        let job = lone.peek(id).await.unwrap().unwrap();
        assert!(job.body[..] == body[..], "job {id} comes back intact");
    }
    let id = lone.put("alone", PutOptions::default()).await.unwrap().id;
    lone.delete(id).await.unwrap();
    assert_eq!(
        server.stats_counter("cmd-put"),
        (LARGE_CALLERS * PUTS_EACH + 1) as u64
    );
}

/// Callers on a thread pinned to another CPU than the server's, so the
/// driver's reads wait for two replies at most
/// (`read_low_water::MOST_REPLIES_AWAITED_ACROSS_CPUS`): no reply may be
/// held back, down to a lone command after the others are done.
pub async fn callers_on_another_cpu_are_never_held_back<A: SharedAdapter>() {
    const PUTS_EACH: usize = 200;
    let server = Server::start();
    crate::cpus::pin(server.pid(), 0);
    crate::cpus::pin_this_thread(1);
    // A reply held back fails its call with this timeout.
    let client = connect::<A>(&server.url(), Duration::from_secs(3)).await;
    let started = Instant::now();
    let callers = (0..CALLERS).map(|caller| {
        let mut handle = client.clone();
        async move {
            for put in 0..PUTS_EACH {
                let body = format!("{caller}:{put}");
                let id = handle.put(body, PutOptions::default()).await.unwrap().id;
                if put % 2 == 0 {
                    handle.delete(id).await.unwrap();
                }
            }
        }
    });
    all(callers.collect()).await;
    let mut lone = client.clone();
    let id = lone.put("alone", PutOptions::default()).await.unwrap().id;
    lone.delete(id).await.unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_eq!(
        server.stats_counter("cmd-put"),
        (CALLERS * PUTS_EACH + 1) as u64
    );
}

/// A reply that came in time is never taken for late: with enough callers
/// for the driver's reads to wait for several replies at once, a first
/// reply that comes alone, long before the others, is read by its
/// deadline, not left in the socket until the driver gives up.
pub async fn a_reply_held_below_the_read_mark_is_not_taken_for_late<A: SharedAdapter>() {
    let read_timeout = Duration::from_millis(600);
    // The first reply comes in time; the others after the first one's
    // deadline but within their own, which starts when the first is read.
    let peer = crate::FakePeer::answering_the_first_put_early(
        CALLERS,
        read_timeout * 2 / 3,
        read_timeout * 4 / 3,
    );
    let client = connect::<A>(&peer.url(), read_timeout).await;
    let callers = (0..CALLERS).map(|caller| {
        let mut handle = client.clone();
        async move {
            handle
                .put(format!("job {caller}"), PutOptions::default())
                .await
        }
    });
    let mut ids: Vec<u64> = all(callers.collect())
        .await
        .into_iter()
        .map(|receipt| receipt.expect("every reply came within its deadline").id)
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, (1..=CALLERS as u64).collect::<Vec<_>>());
}

/// Callers that keep their reserved job while they delete it: each job's
/// body is a slice of the driver's read buffer, so that buffer cannot be
/// reused while any caller holds one, and each read allocates another. A
/// driver that reserves a fixed 64 KiB before every read then allocates
/// 64 KiB per read (about a thousand here); reads sized by what arrives
/// keep those allocations small. Counted with
/// [`LargeAllocationCounter`](crate::large_allocations::LargeAllocationCounter),
/// which the test binary must install as its global allocator (and hold no
/// other test, since every allocation of the process counts).
pub async fn callers_holding_jobs_do_not_make_every_read_allocate<A: SharedAdapter>() {
    const JOBS: usize = 4_000;
    let server = Server::start();
    let client = connect::<A>(&server.url(), Duration::from_secs(5)).await;
    let putters = (0..CALLERS).map(|caller| {
        let mut handle = client.clone();
        async move {
            for put in (caller..JOBS).step_by(CALLERS) {
                let body = format!("{put:0>100}");
                handle.put(body, PutOptions::default()).await.unwrap();
            }
        }
    });
    all(putters.collect()).await;
    let before = crate::large_allocations::large_allocations();
    let workers = (0..CALLERS).map(|_| {
        let mut handle = client.clone();
        async move {
            let mut done = 0;
            loop {
                match handle.reserve_with_timeout(0).await {
                    Ok(job) => {
                        handle.delete(job.id).await.unwrap();
                        assert_eq!(job.body.len(), 100);
                        done += 1;
                    }
                    Err(Error::TimedOut) => return done,
                    Err(error) => panic!("{error}"),
                }
            }
        }
    });
    let done: usize = all(workers.collect()).await.into_iter().sum();
    let large = crate::large_allocations::large_allocations() - before;
    assert_eq!(done, JOBS);
    assert!(
        large <= 4,
        "{large} allocations of {} bytes or more for {JOBS} jobs",
        crate::large_allocations::LARGE
    );
}

/// A server that refuses a handle's `use` (`OUT_OF_MEMORY`, as beanstalkd
/// answers when it cannot make the tube) stays on its tube, and so must the
/// handle: its next job goes where its earlier ones went, and another
/// handle that uses the refused tube still gets its jobs there. A peer that
/// keeps a tube in use as beanstalkd does refuses the first `use emails`.
pub async fn a_refused_use_sends_no_job_to_the_wrong_tube<A: SharedAdapter>() {
    use std::io::{BufRead, BufReader, Write};
    use std::sync::mpsc;

    let (landed, jobs) = mpsc::channel::<(String, String)>();
    let peer = crate::FakePeer::start(move |stream| {
        let mut reader = BufReader::new(stream.try_clone().expect("clone the peer's stream"));
        let (mut tube, mut refused, mut next_id) = (String::from("default"), false, 1);
        let mut line = String::new();
        while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
            let words: Vec<&str> = line.split_whitespace().collect();
            let reply = match words[..] {
                ["use", "emails"] if !refused => {
                    refused = true;
                    "OUT_OF_MEMORY\r\n".to_owned()
                }
                ["use", name] => {
                    tube = name.to_owned();
                    format!("USING {name}\r\n")
                }
                ["put", _, _, _, _] => {
                    let mut body = String::new();
                    reader.read_line(&mut body).expect("the put's body");
                    landed
                        .send((body.trim_end().to_owned(), tube.clone()))
                        .expect("the test listens");
                    next_id += 1;
                    format!("INSERTED {}\r\n", next_id - 1)
                }
                _ => "UNKNOWN_COMMAND\r\n".to_owned(),
            };
            stream
                .write_all(reply.as_bytes())
                .expect("reply to the client");
            line.clear();
        }
    });
    let mut refused = connect::<A>(&peer.url(), Duration::from_secs(5)).await;
    let mut other = refused.clone();
    let error = refused
        .use_tube("emails")
        .await
        .expect_err("the peer refuses it");
    assert!(
        matches!(error, Error::Server(proto::ServerError::OutOfMemory)),
        "{error}"
    );
    refused.put("stays", PutOptions::default()).await.unwrap();
    other.use_tube("emails").await.unwrap();
    other.put("moves", PutOptions::default()).await.unwrap();
    refused
        .put("stays again", PutOptions::default())
        .await
        .unwrap();
    let landed: Vec<(String, String)> = jobs.try_iter().collect();
    let expected = [
        ("stays", "default"),
        ("moves", "emails"),
        ("stays again", "default"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(body, tube)| ((*body).to_owned(), (*tube).to_owned()))
        .collect();
    assert_eq!(landed, expected);
}

/// Expands the shared-handle suite into one `#[test]` per scenario, for a
/// [`SharedAdapter`] and a runtime's `block_on`:
///
/// ```ignore
/// beanstalk_test_support::shared_suite!(MyShared, my_runtime::block_on);
/// ```
#[macro_export]
macro_rules! shared_suite {
    ($adapter:ty, $block_on:expr) => {
        $crate::shared_suite!(@tests $adapter, $block_on,
            a_draining_pipeline_stops_waiting_for_batches,
            a_connection_cut_mid_pipeline_fails_every_call_at_once,
            large_puts_from_a_few_callers_are_never_held_back,
            callers_on_another_cpu_are_never_held_back,
            a_refused_use_sends_no_job_to_the_wrong_tube,
            a_reply_held_below_the_read_mark_is_not_taken_for_late,
            a_large_put_on_a_slow_but_steady_link_does_not_time_out,
            a_write_draining_a_full_send_buffer_does_not_time_out,
            a_delivered_command_is_late_while_a_later_put_still_leaves,
            a_large_put_on_a_slow_but_steady_unix_socket_does_not_time_out,
            a_delivered_command_is_late_while_a_later_put_still_leaves_on_a_unix_socket,
            a_reply_after_a_deadline_extended_for_a_put_still_leaving_is_prompt,
            a_reply_after_a_deadline_extended_for_a_put_still_leaving_is_prompt_on_a_unix_socket,
        );
    };
    (@tests $adapter:ty, $block_on:expr, $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let block_on = $block_on;
                block_on($crate::shared_suite::$name::<$adapter>());
            }
        )*
    };
}
