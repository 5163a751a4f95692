//! A fault-injecting loopback proxy and a scripted fake peer.
//!
//! Our CI machines have no netem qdisc and no toxiproxy package, so faults
//! are injected by a proxy that the test owns: the client connects to the
//! proxy, the proxy connects to the real server, and two threads per
//! connection copy bytes while applying a [`FaultPlan`].

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixListener;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::Address;
use crate::stream::Stream;

/// How long `Drop` waits for the proxy's threads. They are woken by socket
/// shutdowns and should end at once; the bound only guards against a thread
/// stuck elsewhere (a user closure in [`FakePeer`]), which is then left to end
/// on its own rather than hanging the test.
const JOIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Size of each read in a pump.
const CHUNK: usize = 16 * 1024;

/// A direction of traffic through a [`FaultProxy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Client to server: commands.
    Upstream,
    /// Server to client: replies.
    Downstream,
}

impl Direction {
    /// For thread names, which Linux truncates to 15 bytes.
    fn letter(self) -> char {
        match self {
            Self::Upstream => 'u',
            Self::Downstream => 'd',
        }
    }

    fn index(self) -> usize {
        match self {
            Self::Upstream => 0,
            Self::Downstream => 1,
        }
    }
}

/// The faults for one direction.
#[derive(Debug, Clone, Default)]
struct DirectionPlan {
    one_byte_chunks: bool,
    delay: Duration,
    hold_first: Duration,
    cut_after: Option<u64>,
    stall_after: Option<u64>,
    half_close_after: Option<u64>,
    corrupt: Vec<(u64, u8)>,
}

/// What happens when a pump reaches a byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stop {
    // Ordered by precedence when two stops share an offset.
    Cut,
    Stall,
    HalfClose,
}

impl DirectionPlan {
    /// The first stop at or after `offset`.
    fn next_stop(&self, offset: u64) -> Option<(u64, Stop)> {
        [
            (self.cut_after, Stop::Cut),
            (self.stall_after, Stop::Stall),
            (self.half_close_after, Stop::HalfClose),
        ]
        .into_iter()
        .filter_map(|(at, stop)| at.filter(|&at| at >= offset).map(|at| (at, stop)))
        .min()
    }

    /// Applies the byte replacements that fall into `buf`, which starts at
    /// stream offset `offset`.
    fn corrupt(&self, offset: u64, buf: &mut [u8]) {
        for &(index, value) in &self.corrupt {
            if let Some(i) = index.checked_sub(offset) {
                if let Some(b) = usize::try_from(i).ok().and_then(|i| buf.get_mut(i)) {
                    *b = value;
                }
            }
        }
    }
}

/// The faults a [`FaultProxy`] injects, per [`Direction`].
///
/// Byte counts and offsets are per connection and per direction, counted from
/// the start of the connection. By default the plan applies to every
/// connection; see [`FaultPlan::first_connections`]. `FaultPlan::default()`
/// (or [`FaultPlan::new`]) forwards everything untouched.
///
/// Once a direction reaches a cut, stall or half-close, nothing more is
/// forwarded in that direction; if two are set for the same offset, cut wins
/// over stall, and stall over half-close.
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct FaultPlan {
    dirs: [DirectionPlan; 2],
    first_connections: Option<usize>,
}

impl FaultPlan {
    /// A plan without faults.
    pub fn new() -> Self {
        Self::default()
    }

    fn dir(&mut self, dir: Direction) -> &mut DirectionPlan {
        &mut self.dirs[dir.index()]
    }

    /// Delivers the bytes one `write` per byte, with `TCP_NODELAY` on both
    /// legs, so the receiver sees (almost always) 1-byte reads. Add
    /// [`delay`](Self::delay) for a pause before every byte, which makes 1-byte
    /// reads certain even for a slow reader.
    pub fn one_byte_chunks(mut self, dir: Direction) -> Self {
        self.dir(dir).one_byte_chunks = true;
        self
    }

    /// Sleeps for `delay` before forwarding each chunk (each read from the
    /// sender, or each byte with [`one_byte_chunks`](Self::one_byte_chunks)).
    pub fn delay(mut self, dir: Direction, delay: Duration) -> Self {
        self.dir(dir).delay = delay;
        self
    }

    /// Holds the first chunk read in `dir` on each connection for `hold`
    /// before forwarding it (and the rest, at the plan's pace): a link that
    /// passes nothing for a while, then goes on. What the sender writes
    /// meanwhile stays in the kernel's buffers.
    pub fn hold_first(mut self, dir: Direction, hold: Duration) -> Self {
        self.dir(dir).hold_first = hold;
        self
    }

    /// After exactly `n_bytes` have been forwarded in `dir`, shuts down both
    /// legs of the connection, as if the server had been killed mid-reply.
    /// `0` cuts the connection as soon as it is accepted.
    pub fn cut_after(mut self, dir: Direction, n_bytes: u64) -> Self {
        self.dir(dir).cut_after = Some(n_bytes);
        self
    }

    /// After `n_bytes`, stops forwarding in `dir` for good, but keeps both
    /// sockets open: a peer that hangs. The rest stays unread in the kernel
    /// buffers. Only dropping the proxy or [`FaultProxy::cut_all`] ends it.
    pub fn stall_after(mut self, dir: Direction, n_bytes: u64) -> Self {
        self.dir(dir).stall_after = Some(n_bytes);
        self
    }

    /// Replaces the byte at stream offset `index` (0-based) with `value`. Can
    /// be given several times for different offsets.
    pub fn corrupt_byte(mut self, dir: Direction, index: u64, value: u8) -> Self {
        self.dir(dir).corrupt.push((index, value));
        self
    }

    /// After `n_bytes`, shuts down the write side toward the receiver (it reads
    /// EOF) and stops forwarding in `dir`; the other direction keeps working.
    pub fn half_close_after(mut self, dir: Direction, n_bytes: u64) -> Self {
        self.dir(dir).half_close_after = Some(n_bytes);
        self
    }

    /// Applies the faults only to the first `n` connections; later ones are
    /// forwarded untouched. Lets a test check that a client reconnects after a
    /// fault and then succeeds.
    pub fn first_connections(mut self, n: usize) -> Self {
        self.first_connections = Some(n);
        self
    }
}

/// Live state shared by the accept thread, every pump and the handle.
#[derive(Debug, Default)]
struct Shared {
    ctl: Mutex<Ctl>,
    /// Signalled whenever `ctl` changes or a connection is cut, so pumps that
    /// wait (stalled, sleeping a delay) notice at once.
    wake: Condvar,
    conns: Mutex<Vec<Arc<Conn>>>,
    pumps: Mutex<Vec<JoinHandle<()>>>,
    accepted: AtomicUsize,
    forwarded: [AtomicU64; 2],
    /// When the last chunk in each direction was forwarded.
    last_forwarded: [Mutex<Option<Instant>>; 2],
}

#[derive(Debug, Default)]
struct Ctl {
    stalled: bool,
    shutdown: bool,
}

impl Shared {
    fn ctl(&self) -> MutexGuard<'_, Ctl> {
        self.ctl.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn notify(&self) {
        // Taking the lock orders the notification after any waiter's check of
        // its condition, so no wake-up is lost.
        let _guard = self.ctl();
        self.wake.notify_all();
    }

    fn is_over(&self, ctl: &Ctl, conn: &Conn) -> bool {
        ctl.shutdown || conn.closed.load(Ordering::SeqCst)
    }

    /// Blocks while the proxy is stalled; false if the connection or the
    /// proxy is finished meanwhile.
    fn wait_while_stalled(&self, conn: &Conn) -> bool {
        let mut ctl = self.ctl();
        while ctl.stalled && !self.is_over(&ctl, conn) {
            ctl = self.wake.wait(ctl).unwrap_or_else(PoisonError::into_inner);
        }
        !self.is_over(&ctl, conn)
    }

    /// Sleeps for `d` unless the connection or the proxy finishes first;
    /// false in that case.
    fn sleep(&self, d: Duration, conn: &Conn) -> bool {
        let deadline = Instant::now() + d;
        let mut ctl = self.ctl();
        loop {
            if self.is_over(&ctl, conn) {
                return false;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            ctl = self
                .wake
                .wait_timeout(ctl, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Blocks until the connection or the proxy is finished.
    fn wait_over(&self, conn: &Conn) {
        let mut ctl = self.ctl();
        while !self.is_over(&ctl, conn) {
            ctl = self.wake.wait(ctl).unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn cut_all(&self) {
        let conns = self
            .conns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for conn in conns {
            conn.cut();
        }
        self.notify();
    }
}

/// One proxied connection: the client leg and the upstream leg.
#[derive(Debug)]
struct Conn {
    client: Stream,
    upstream: Stream,
    closed: AtomicBool,
    live_pumps: AtomicUsize,
}

impl Conn {
    /// Shuts down both legs. Shutdown (unlike close) acts on the socket
    /// itself, so it wakes the pumps blocked on their own handles, and both
    /// peers see the connection end.
    fn cut(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let _ = self.client.shutdown(Shutdown::Both);
        let _ = self.upstream.shutdown(Shutdown::Both);
    }
}

/// A loopback proxy that forwards to a server and injects faults.
///
/// Listens on `127.0.0.1:0` ([`FaultProxy::start`]) or on a Unix socket in
/// a temporary directory of its own ([`FaultProxy::start_unix`]); the
/// upstream may be either kind. Each accepted connection gets its own
/// upstream connection and two threads, one per [`Direction`]. If the
/// upstream cannot be reached (server killed), the client's connection is
/// accepted and then closed at once, so the client reads EOF.
///
/// Dropping the proxy closes the listener and every connection and waits for
/// its threads.
#[derive(Debug)]
pub struct FaultProxy {
    listen: Address,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
    /// Holds the Unix socket; removed with the proxy, after the listener.
    _socket_dir: Option<TempDir>,
}

/// Where a [`FaultProxy`] accepts its clients.
enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl Listener {
    fn accept(&self) -> io::Result<Stream> {
        match self {
            Self::Tcp(l) => l.accept().map(|(s, _)| Stream::Tcp(s)),
            Self::Unix(l) => l.accept().map(|(s, _)| Stream::Unix(s)),
        }
    }
}

/// Numbers the Unix-socket proxies of a process, for their thread names.
static UNIX_PROXIES: AtomicUsize = AtomicUsize::new(0);

impl FaultProxy {
    /// Starts a proxy in front of `upstream`, listening on TCP loopback.
    ///
    /// # Panics
    /// If no loopback port can be bound.
    pub fn start(upstream: &Address, plan: FaultPlan) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .unwrap_or_else(|e| panic!("FaultProxy: cannot bind 127.0.0.1:0: {e}"));
        let addr = listener.local_addr().expect("listener has an address");
        // Thread names start with "fp<port>-" so a test can find the threads
        // of one proxy (in /proc/self/task/*/comm) and check that none
        // outlives it.
        let name = format!("fp{}", addr.port());
        Self::serve(
            Listener::Tcp(listener),
            Address::Tcp(addr),
            None,
            name,
            upstream,
            plan,
        )
    }

    /// Starts a proxy in front of `upstream`, listening on a Unix socket
    /// (`proxy.sock` in a temporary directory removed with the proxy): what
    /// a client sees of a local server, whose socket buffers count and
    /// block differently from TCP's.
    ///
    /// # Panics
    /// If the directory or the socket cannot be created.
    pub fn start_unix(upstream: &Address, plan: FaultPlan) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("beanstalk-proxy-")
            .tempdir()
            .unwrap_or_else(|e| panic!("FaultProxy: cannot create a temporary directory: {e}"));
        let path = dir.path().join("proxy.sock");
        let listener = UnixListener::bind(&path)
            .unwrap_or_else(|e| panic!("FaultProxy: cannot bind {}: {e}", path.display()));
        // Thread names must fit Linux's 15 bytes: a number, not the path.
        let name = format!("fpu{}", UNIX_PROXIES.fetch_add(1, Ordering::Relaxed));
        Self::serve(
            Listener::Unix(listener),
            Address::Unix(path),
            Some(dir),
            name,
            upstream,
            plan,
        )
    }

    fn serve(
        listener: Listener,
        listen: Address,
        socket_dir: Option<TempDir>,
        name: String,
        upstream: &Address,
        plan: FaultPlan,
    ) -> Self {
        let shared = Arc::new(Shared::default());
        let acceptor = {
            let shared = Arc::clone(&shared);
            let upstream = upstream.clone();
            thread::Builder::new()
                .name(format!("{name}-accept"))
                .spawn(move || accept_loop(&listener, &name, &upstream, &plan, &shared))
                .expect("spawn proxy accept thread")
        };
        Self {
            listen,
            shared,
            acceptor: Some(acceptor),
            _socket_dir: socket_dir,
        }
    }

    /// The proxy's TCP listening address.
    ///
    /// # Panics
    /// If the proxy listens on a Unix socket ([`FaultProxy::start_unix`]).
    pub fn addr(&self) -> SocketAddr {
        match &self.listen {
            Address::Tcp(addr) => *addr,
            Address::Unix(path) => panic!(
                "addr() on a proxy listening on the Unix socket {}",
                path.display()
            ),
        }
    }

    /// Where the proxy listens, TCP or Unix.
    pub fn address(&self) -> &Address {
        &self.listen
    }

    /// `beanstalk://127.0.0.1:PORT` or `unix:///path` of the proxy.
    pub fn url(&self) -> String {
        self.listen.url()
    }

    /// Holds all forwarding, on every connection and in both directions, until
    /// [`resume`](Self::resume). Bytes already read are held back; the rest
    /// stays in the kernel buffers.
    pub fn stall_now(&self) {
        self.shared.ctl().stalled = true;
    }

    /// Ends a [`stall_now`](Self::stall_now). A planned
    /// [`FaultPlan::stall_after`] is permanent and is not lifted.
    pub fn resume(&self) {
        self.shared.ctl().stalled = false;
        self.shared.notify();
    }

    /// Shuts down both legs of every current connection now. New connections
    /// are still accepted.
    pub fn cut_all(&self) {
        self.shared.cut_all();
    }

    /// How many connections were accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Bytes forwarded in `dir` so far, summed over all connections.
    ///
    /// A chunk is counted just before it is written (and uncounted if the
    /// write fails), so once a peer has received bytes they are included:
    /// after reading a reply, no polling is needed.
    pub fn bytes_forwarded(&self, dir: Direction) -> u64 {
        self.shared.forwarded[dir.index()].load(Ordering::SeqCst)
    }

    /// When the proxy last forwarded bytes in `dir`, on any connection:
    /// with `Direction::Downstream`, when a reply reached the client's
    /// socket, for tests of how soon a client hands it on. `None` before
    /// anything was forwarded in `dir`.
    ///
    /// Taken just before the write, like [`bytes_forwarded`](Self::bytes_forwarded)'s
    /// count, so once a peer has received bytes it is included (the write
    /// itself, microseconds on loopback, counts as waiting).
    pub fn last_forwarded(&self, dir: Direction) -> Option<Instant> {
        *self.shared.last_forwarded[dir.index()]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.ctl().shutdown = true;
        self.shared.notify();
        // accept() has no timeout; a connection of our own unblocks it, and
        // the loop then sees the shutdown flag.
        let _ = Stream::connect(&self.listen);
        let deadline = Instant::now() + JOIN_TIMEOUT;
        if let Some(acceptor) = self.acceptor.take() {
            join_until(vec![acceptor], deadline);
        }
        self.shared.cut_all();
        let pumps = std::mem::take(
            &mut *self
                .shared
                .pumps
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        join_until(pumps, deadline);
        self.shared
            .conns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

fn accept_loop(
    listener: &Listener,
    name: &str,
    upstream: &Address,
    plan: &FaultPlan,
    shared: &Arc<Shared>,
) {
    let clean = DirectionPlan::default();
    loop {
        let client = listener.accept();
        if shared.ctl().shutdown {
            return;
        }
        // Out of fds or similar: back off instead of spinning.
        let Ok(client) = client else {
            thread::sleep(Duration::from_millis(10));
            continue;
        };
        let index = shared.accepted.fetch_add(1, Ordering::SeqCst);
        prune(shared);

        let Ok(upstream) = Stream::connect(upstream) else {
            // Dropping the client closes it: the client sees EOF, as it would
            // when a server dies.
            continue;
        };
        let _ = client.set_nodelay();
        let _ = upstream.set_nodelay();

        let faulty = plan.first_connections.is_none_or(|n| index < n);
        let plan_for = |dir: Direction| {
            if faulty {
                plan.dirs[dir.index()].clone()
            } else {
                clean.clone()
            }
        };

        let (Ok(c2), Ok(u2)) = (client.try_clone(), upstream.try_clone()) else {
            continue;
        };
        let conn = Arc::new(Conn {
            client,
            upstream,
            closed: AtomicBool::new(false),
            live_pumps: AtomicUsize::new(2),
        });
        shared
            .conns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::clone(&conn));

        let legs = [
            (Direction::Upstream, c2, u2.try_clone()),
            (Direction::Downstream, u2, conn.client.try_clone()),
        ];
        for (dir, src, dst) in legs {
            let Ok(dst) = dst else {
                conn.cut();
                conn.live_pumps.fetch_sub(1, Ordering::SeqCst);
                continue;
            };
            let pump = Pump {
                shared: Arc::clone(shared),
                conn: Arc::clone(&conn),
                dir,
                plan: plan_for(dir),
                src,
                dst,
            };
            let handle = thread::Builder::new()
                .name(format!("{name}-{}{index}", dir.letter()))
                .spawn(move || pump.run());
            match handle {
                Ok(h) => shared
                    .pumps
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(h),
                Err(_) => {
                    conn.cut();
                    conn.live_pumps.fetch_sub(1, Ordering::SeqCst);
                }
            }
        }
    }
}

/// Forgets finished connections and threads, so a long test that opens many
/// connections does not keep their file descriptors.
fn prune(shared: &Shared) {
    shared
        .conns
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .retain(|c| c.live_pumps.load(Ordering::SeqCst) > 0);
    let mut pumps = shared.pumps.lock().unwrap_or_else(PoisonError::into_inner);
    let (done, live): (Vec<_>, Vec<_>) = pumps.drain(..).partition(JoinHandle::is_finished);
    *pumps = live;
    drop(pumps);
    for h in done {
        let _ = h.join();
    }
}

/// Copies one direction of one connection, applying its plan.
struct Pump {
    shared: Arc<Shared>,
    conn: Arc<Conn>,
    dir: Direction,
    plan: DirectionPlan,
    src: Stream,
    dst: Stream,
}

impl Pump {
    fn run(mut self) {
        self.forward();
        // The last pump of a connection closes it completely, so the peers
        // are not left waiting on a half-open socket nobody serves.
        if self.conn.live_pumps.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.conn.cut();
        }
    }

    fn forward(&mut self) {
        let mut offset: u64 = 0;
        let mut buf = vec![0u8; CHUNK];
        let mut hold = self.plan.hold_first;
        loop {
            let next = self.plan.next_stop(offset);
            if let Some((at, stop)) = next {
                if at == offset {
                    self.stop(stop);
                    return;
                }
            }
            // Never read past the next stop: what lies beyond it must stay
            // unread, exactly as if the connection had ended there.
            let want = next.map_or(CHUNK, |(at, _)| {
                usize::try_from(at - offset).map_or(CHUNK, |n| n.min(CHUNK))
            });
            let n = match self.src.read(&mut buf[..want]) {
                Ok(0) => {
                    // Orderly EOF: pass the half-close on.
                    let _ = self.dst.shutdown(Shutdown::Write);
                    return;
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.conn.cut();
                    self.shared.notify();
                    return;
                }
            };
            self.plan.corrupt(offset, &mut buf[..n]);
            let piece = if self.plan.one_byte_chunks { 1 } else { n };
            for chunk in buf[..n].chunks(piece) {
                if !self.shared.wait_while_stalled(&self.conn) {
                    return;
                }
                if !hold.is_zero() && !self.shared.sleep(std::mem::take(&mut hold), &self.conn) {
                    return;
                }
                if !self.plan.delay.is_zero() && !self.shared.sleep(self.plan.delay, &self.conn) {
                    return;
                }
                // Counted and timed before the write, so that by the time
                // the receiver can see these bytes both include them.
                let counter = &self.shared.forwarded[self.dir.index()];
                let len = chunk.len() as u64;
                counter.fetch_add(len, Ordering::SeqCst);
                *self.shared.last_forwarded[self.dir.index()]
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
                if self.dst.write_all(chunk).is_err() {
                    counter.fetch_sub(len, Ordering::SeqCst);
                    self.conn.cut();
                    self.shared.notify();
                    return;
                }
                offset += len;
            }
        }
    }

    fn stop(&self, stop: Stop) {
        match stop {
            Stop::Cut => {
                self.conn.cut();
                self.shared.notify();
            }
            Stop::Stall => self.shared.wait_over(&self.conn),
            Stop::HalfClose => {
                let _ = self.dst.shutdown(Shutdown::Write);
            }
        }
    }
}

/// Joins the threads that finish before `deadline`; the others are detached.
fn join_until(handles: Vec<JoinHandle<()>>, deadline: Instant) {
    while handles.iter().any(|h| !h.is_finished()) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(1));
    }
    for h in handles {
        if h.is_finished() {
            let _ = h.join();
        }
    }
}

/// State shared between a [`FakePeer`] and its thread.
#[derive(Debug, Default)]
struct PeerShared {
    shutdown: AtomicBool,
    /// The connection being handled, so `Drop` can unblock the closure.
    current: Mutex<Option<TcpStream>>,
    accepted: AtomicUsize,
    panic: Mutex<Option<String>>,
}

/// A listener on `127.0.0.1:0` whose connections are served by a closure:
/// a peer that says exactly what a test wants, such as garbage or a reply cut
/// short.
///
/// Connections are handled one at a time, in the order they are accepted, on
/// one background thread. When the closure returns, the peer sends FIN and
/// discards any further input for up to 250 ms before closing, so the client
/// reads everything the closure wrote and then a clean EOF rather than a reset.
///
/// If the closure panics (for example a failed `assert!` on what the client
/// sent), the next connections are still served, and dropping the `FakePeer`
/// panics with the message so the test fails.
#[derive(Debug)]
pub struct FakePeer {
    addr: SocketAddr,
    shared: Arc<PeerShared>,
    thread: Option<JoinHandle<()>>,
}

impl FakePeer {
    /// Starts listening; `handler` runs once per accepted connection.
    ///
    /// # Panics
    /// If no loopback port can be bound.
    pub fn start<F>(handler: F) -> Self
    where
        F: FnMut(&mut TcpStream) + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0")
            .unwrap_or_else(|e| panic!("FakePeer: cannot bind 127.0.0.1:0: {e}"));
        let addr = listener.local_addr().expect("listener has an address");
        let shared = Arc::new(PeerShared::default());
        let thread = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name(format!("fakepeer{}", addr.port()))
                .spawn(move || serve(&listener, &shared, handler))
                .expect("spawn fake peer thread")
        };
        Self {
            addr,
            shared,
            thread: Some(thread),
        }
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `beanstalk://127.0.0.1:PORT` of the peer.
    pub fn url(&self) -> String {
        format!("beanstalk://{}", self.addr)
    }

    /// How many connections were accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// A peer that takes `puts` puts on each connection and answers the
    /// first `first_after` and the others `rest_after` after the first put
    /// came (job ids from 1; a put that comes later is answered at once),
    /// as a server does whose disk or uplink slows down: the first reply
    /// alone is fewer bytes than a pipelining client's receive mark asks
    /// for. It then reads until the client closes.
    pub fn answering_the_first_put_early(
        puts: usize,
        first_after: Duration,
        rest_after: Duration,
    ) -> Self {
        use std::io::BufReader;
        use std::sync::mpsc;
        Self::start(move |stream| {
            let mut reader = BufReader::new(stream.try_clone().expect("clone the peer's stream"));
            // Read on another thread: a client may hold commands back
            // until the first reply.
            let (read, arrived) = mpsc::channel();
            let reading = thread::spawn(move || {
                for _ in 0..puts {
                    if !read_put(&mut reader) {
                        return;
                    }
                    let _ = read.send(Instant::now());
                }
                let _ = io::copy(&mut reader, &mut io::sink());
            });
            let first = arrived.recv().expect("a first put");
            thread::sleep(first_after);
            stream
                .write_all(b"INSERTED 1\r\n")
                .expect("the first reply");
            thread::sleep((first + rest_after).saturating_duration_since(Instant::now()));
            // Every put in by now, then each later one as it comes: a
            // client may hold commands back until replies come.
            let mut answered = 1;
            let mut rest = String::new();
            while arrived.try_recv().is_ok() {
                answered += 1;
                rest.push_str(&format!("INSERTED {answered}\r\n"));
            }
            stream
                .write_all(rest.as_bytes())
                .expect("the other replies");
            while answered < puts {
                arrived.recv().expect("every put");
                answered += 1;
                let reply = format!("INSERTED {answered}\r\n");
                stream.write_all(reply.as_bytes()).expect("a later reply");
            }
            let _ = reading.join();
        })
    }
}

impl Drop for FakePeer {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        if let Some(s) = &*self
            .shared
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
        {
            let _ = s.shutdown(Shutdown::Both);
        }
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            join_until(vec![t], Instant::now() + JOIN_TIMEOUT);
        }
        let panic = self
            .shared
            .panic
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        // Panicking while already unwinding would abort the test binary.
        if let Some(msg) = panic {
            if !thread::panicking() {
                panic!("FakePeer handler panicked: {msg}");
            }
        }
    }
}

fn serve<F>(listener: &TcpListener, shared: &PeerShared, mut handler: F)
where
    F: FnMut(&mut TcpStream),
{
    for stream in listener.incoming() {
        if shared.shutdown.load(Ordering::SeqCst) {
            return;
        }
        let Ok(mut stream) = stream else {
            thread::sleep(Duration::from_millis(10));
            continue;
        };
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        *shared
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = stream.try_clone().ok();
        // Drop may have run between the check above and publishing `current`;
        // re-check so the closure is not started on a peer being torn down.
        if shared.shutdown.load(Ordering::SeqCst) {
            return;
        }
        let result = panic::catch_unwind(AssertUnwindSafe(|| handler(&mut stream)));
        *shared
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
        if let Err(payload) = result {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic payload".to_owned());
            shared
                .panic
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get_or_insert(msg);
        }
        linger_close(stream);
    }
}

/// Closes gracefully: FIN first, then read and discard for a short while.
/// Closing a socket with unread input makes the kernel send a reset, which can
/// destroy data the client has not read yet.
fn linger_close(mut stream: TcpStream) {
    let _ = stream.flush();
    let _ = stream.shutdown(Shutdown::Write);
    let deadline = Instant::now() + Duration::from_millis(250);
    let mut sink = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// A listener on `127.0.0.1:0` that serves every connection at once, each
/// on a thread of its own, answering each command line (without its CRLF)
/// with what `answer` returns for it: `None` sends nothing, as a server
/// does to a `reserve` while no job is ready. For clients that open many
/// connections, such as a worker that reconnects, where a [`FakePeer`]
/// serves one at a time. Commands with bodies (`put`) are not understood.
#[derive(Debug)]
pub struct ScriptedServer {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    shutdown: Arc<AtomicBool>,
}

impl ScriptedServer {
    /// Starts listening.
    ///
    /// # Panics
    /// If no loopback port can be bound.
    pub fn start<F>(answer: F) -> Self
    where
        F: Fn(&str) -> Option<Vec<u8>> + Send + Sync + 'static,
    {
        use std::io::{BufRead, BufReader};
        let listener = TcpListener::bind("127.0.0.1:0")
            .unwrap_or_else(|e| panic!("ScriptedServer: cannot bind 127.0.0.1:0: {e}"));
        let addr = listener.local_addr().expect("listener has an address");
        let connections = Arc::new(AtomicUsize::new(0));
        let shutdown = Arc::new(AtomicBool::new(false));
        let answer = Arc::new(answer);
        {
            let (connections, shutdown) = (Arc::clone(&connections), Arc::clone(&shutdown));
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if shutdown.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(mut stream) = stream else { continue };
                    connections.fetch_add(1, Ordering::SeqCst);
                    let answer = Arc::clone(&answer);
                    thread::spawn(move || {
                        let Ok(read) = stream.try_clone() else { return };
                        let mut lines = BufReader::new(read);
                        let mut line = String::new();
                        while lines.read_line(&mut line).unwrap_or(0) > 0 {
                            if let Some(reply) = answer(line.trim_end()) {
                                if stream.write_all(&reply).is_err() {
                                    return;
                                }
                            }
                            line.clear();
                        }
                    });
                }
            });
        }
        Self {
            addr,
            connections,
            shutdown,
        }
    }

    /// `beanstalk://127.0.0.1:PORT` of the server.
    pub fn url(&self) -> String {
        format!("beanstalk://{}", self.addr)
    }

    /// How many connections were accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for ScriptedServer {
    /// Stops accepting; connections already open end when their clients
    /// close them.
    fn drop(&mut self) {
        self.shutdown.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

/// A peer that answers `put`s with `INSERTED <n>` (ids from 1) on a thread
/// pinned to CPU `cpu`, and reads nothing while paused: a server that
/// stalls. Its receive buffer is small (4 KiB asked), so a client's writes
/// block after a few kilobytes; serves one connection.
#[derive(Debug)]
pub struct PausablePutServer {
    addr: SocketAddr,
    paused: Arc<AtomicBool>,
}

impl PausablePutServer {
    /// Starts listening.
    ///
    /// # Panics
    /// If no loopback port can be bound.
    pub fn start(cpu: usize) -> Self {
        use std::io::BufReader;
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("a TCP socket");
        // Set before listening, so accepted connections inherit it.
        socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
        let any: SocketAddr = "127.0.0.1:0".parse().expect("an address");
        socket.bind(&any.into()).expect("bind 127.0.0.1:0");
        socket.listen(1).expect("listen");
        let listener: TcpListener = socket.into();
        let addr = listener.local_addr().expect("listener has an address");
        let paused = Arc::new(AtomicBool::new(false));
        let pause = Arc::clone(&paused);
        thread::spawn(move || {
            crate::cpus::pin_this_thread(cpu);
            let Ok((stream, _)) = listener.accept() else {
                return;
            };
            let _ = stream.set_nodelay(true);
            let Ok(mut replies) = stream.try_clone() else {
                return;
            };
            let mut commands = BufReader::new(stream);
            let mut id = 0u64;
            loop {
                while pause.load(Ordering::SeqCst) {
                    thread::sleep(Duration::from_millis(2));
                }
                if !read_put(&mut commands) {
                    return;
                }
                id += 1;
                if replies
                    .write_all(format!("INSERTED {id}\r\n").as_bytes())
                    .is_err()
                {
                    return;
                }
            }
        });
        Self { addr, paused }
    }

    /// `beanstalk://127.0.0.1:PORT` of the peer.
    pub fn url(&self) -> String {
        format!("beanstalk://{}", self.addr)
    }

    /// Stops reading (after the command being read).
    pub fn pause(&self) {
        self.paused.store(true, Ordering::SeqCst);
    }

    /// Reads and answers again.
    pub fn resume(&self) {
        self.paused.store(false, Ordering::SeqCst);
    }
}

/// Reads one `put` (its line and body) from a client; false once the
/// client has closed.
///
/// # Panics
/// If the client sent another command.
fn read_put(commands: &mut impl io::BufRead) -> bool {
    let mut line = String::new();
    if commands.read_line(&mut line).unwrap_or(0) == 0 {
        return false;
    }
    let bytes: usize = line
        .trim_end()
        .rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a put: {line:?}"));
    let mut body = vec![0; bytes + 2];
    commands.read_exact(&mut body).is_ok()
}
