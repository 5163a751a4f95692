//! The core driven the way an embedder drives it, against a real
//! beanstalkd: two event loops of the kind the README's "Embedding the core
//! in your own event loop" is for, each pipelining thousands of puts of
//! 0 B to 1 MiB, then reserving and deleting every job with at most 64
//! reserved at once, checking every id and every body byte for byte.
//!
//! - [`nonblocking`]: a [`Connection`] over a non-blocking socket, written
//!   and read until `WouldBlock`, waiting in `poll(2)` (what a mio or epoll
//!   loop does).
//! - [`fixed_buffer`]: the io_uring shape. The caller owns one fixed read
//!   buffer and hands [`frame`] whatever arrived; commands are encoded with
//!   [`Request::encode`] and their replies typed with
//!   [`Request::from_response`], with no [`Connection`].
//!
//! The example in the README (`examples/embed_std.rs`) is one blocking
//! round trip; these cover what it does not: writes and reads interleaved
//! on one non-blocking socket, large bodies queued by reference and
//! written vectored, replies in pieces of every size down to a byte, and
//! a pipeline long enough to fill the socket buffers both ways.
#![cfg(unix)]

use std::collections::{HashMap, VecDeque};
use std::io::{self, IoSlice, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;

use beanstalk_proto::cmd::CommandKind;
use beanstalk_proto::frame::{self, Frame, Head, Limits, Status};
use beanstalk_proto::{Config, Job, PutOptions, Request, Response, Tube, WriteBuf, cmd};
use beanstalk_test_support::{Direction, FaultPlan, FaultProxy, Server};
use bytes::{Buf, Bytes};

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;

/// The most jobs reserved at once, counting reserves not yet answered.
const WINDOW: usize = 64;

/// How long a loop waits for its socket before it calls the test stuck.
const STUCK_MS: libc::c_int = 10_000;

/// The jobs a test puts, by index: sizes, and a body every byte of which
/// depends on the job's index and the byte's offset.
struct Workload {
    sizes: Vec<usize>,
}

impl Workload {
    /// 10,000 jobs: mostly 0, 1 and 100 bytes, every 100th 64 KiB and
    /// every 1,000th 1 MiB (17 MB of bodies).
    fn full() -> Self {
        Self::new(100, Some(1_000))
    }

    /// The same 10,000 jobs but for the large ones: 4 of 64 KiB and, with
    /// `mib`, one of 1 MiB (1 or 2 MB of bodies), for loops that take each
    /// byte in a syscall of its own.
    fn light(mib: bool) -> Self {
        Self::new(2_500, mib.then_some(10_000))
    }

    fn new(every_64_kib: usize, every_mib: Option<usize>) -> Self {
        let sizes = (0..10_000)
            .map(|index| match index {
                _ if every_mib.is_some_and(|every| index % every == every - 1) => MIB,
                _ if index % every_64_kib == every_64_kib / 2 => 64 * KIB,
                _ => [0, 1, 100][index % 3],
            })
            .collect();
        Self { sizes }
    }

    fn len(&self) -> usize {
        self.sizes.len()
    }

    fn byte(index: usize, offset: usize) -> u8 {
        (index.wrapping_mul(131) ^ offset.wrapping_mul(7) ^ (offset >> 9)) as u8
    }

    fn body(&self, index: usize) -> Bytes {
        (0..self.sizes[index])
            .map(|offset| Self::byte(index, offset))
            .collect()
    }

    fn assert_body(&self, index: usize, job: &Job) {
        assert_eq!(
            job.body.len(),
            self.sizes[index],
            "job {} (#{index})",
            job.id
        );
        if let Some(offset) = (0..job.body.len()).find(|&o| job.body[o] != Self::byte(index, o)) {
            panic!("job {} (#{index}): byte {offset} differs", job.id);
        }
    }
}

/// A server and a connection configuration that take 1 MiB jobs.
fn server() -> (Server, Config) {
    let server = Server::builder().max_job_size(MIB as u32).start();
    (server, Config::default().max_job_size(MIB as u32))
}

/// What a command in flight was sent for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    Put(usize),
    Reserve,
    Delete(u64),
}

/// The workload's bookkeeping, shared by both drivers: which command to
/// send next, and the checks on every reply.
struct Plan<'a> {
    work: &'a Workload,
    puts_sent: usize,
    /// Job id to workload index, from `INSERTED`.
    ids: HashMap<u64, usize>,
    reserves_sent: usize,
    /// Jobs reserved, or asked for, and not yet deleted.
    held: usize,
    most_held: usize,
    reserved: Vec<bool>,
    deleted: usize,
}

impl<'a> Plan<'a> {
    fn new(work: &'a Workload) -> Self {
        Self {
            work,
            puts_sent: 0,
            ids: HashMap::with_capacity(work.len()),
            reserves_sent: 0,
            held: 0,
            most_held: 0,
            reserved: vec![false; work.len()],
            deleted: 0,
        }
    }

    /// The next command to send while `queued` bytes wait to be written:
    /// puts while less than 1 MiB is queued, then reserves as the window
    /// allows (the puts' replies come first, so every reserved id is known).
    fn next(&mut self, queued: usize) -> Option<Sent> {
        if self.puts_sent < self.work.len() {
            if queued >= MIB {
                return None;
            }
            self.puts_sent += 1;
            return Some(Sent::Put(self.puts_sent - 1));
        }
        if self.held < WINDOW && self.reserves_sent < self.work.len() {
            self.reserves_sent += 1;
            self.held += 1;
            self.most_held = self.most_held.max(self.held);
            return Some(Sent::Reserve);
        }
        None
    }

    fn inserted(&mut self, index: usize, reply: Response) {
        let receipt = cmd::Put::from_response(reply).expect("put");
        assert!(!receipt.buried, "job #{index} buried");
        let earlier = self.ids.insert(receipt.id, index);
        assert_eq!(earlier, None, "id {} given twice", receipt.id);
    }

    /// Checks a reserved job and returns the delete to send for it.
    fn reserved(&mut self, reply: Response) -> Sent {
        let job = cmd::Reserve::from_response(reply).expect("reserve");
        let index = *self
            .ids
            .get(&job.id)
            .unwrap_or_else(|| panic!("reserved job {} was never put", job.id));
        assert!(!self.reserved[index], "job {} reserved twice", job.id);
        self.reserved[index] = true;
        self.work.assert_body(index, &job);
        Sent::Delete(job.id)
    }

    fn deleted(&mut self, id: u64, reply: Response) {
        cmd::Delete::from_response(reply).unwrap_or_else(|e| panic!("delete {id}: {e}"));
        self.held -= 1;
        self.deleted += 1;
    }

    fn is_done(&self) -> bool {
        self.deleted == self.work.len()
    }

    /// Every job was put once, reserved once and deleted, within the window.
    fn check(&self, server: &Server) {
        assert!(self.is_done());
        assert_eq!(self.ids.len(), self.work.len());
        assert!(self.reserved.iter().all(|r| *r));
        assert!(self.most_held <= WINDOW, "{} held at once", self.most_held);
        assert_eq!(server.stats_counter("total-jobs"), self.work.len() as u64);
        assert_eq!(server.stats_counter("cmd-delete"), self.work.len() as u64);
        assert_eq!(server.stats_counter("current-jobs-ready"), 0);
        assert_eq!(server.stats_counter("current-jobs-reserved"), 0);
    }
}

/// Blocks in `poll(2)` until `socket` is readable, or writable when
/// `write` is set; panics after [`STUCK_MS`].
fn wait(socket: &TcpStream, write: bool) {
    let mut fd = libc::pollfd {
        fd: socket.as_raw_fd(),
        events: libc::POLLIN | if write { libc::POLLOUT } else { 0 },
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd, for the duration of the call.
        let ready = unsafe { libc::poll(&raw mut fd, 1, STUCK_MS) };
        match ready {
            1 => return,
            0 => panic!("nothing to read or write for {STUCK_MS} ms"),
            _ => {
                let error = io::Error::last_os_error();
                assert_eq!(error.kind(), io::ErrorKind::Interrupted, "poll: {error}");
            }
        }
    }
}

/// Writes `out` until it is empty or the socket would block, vectored, so
/// bodies queued by reference go out without a copy. Returns whether
/// anything was written.
fn write_some(socket: &mut TcpStream, out: &mut WriteBuf) -> io::Result<bool> {
    let mut wrote = false;
    while out.has_remaining() {
        let mut slices = [IoSlice::new(&[]); 64];
        let count = out.chunks_vectored(&mut slices);
        match socket.write_vectored(&slices[..count]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(written) => {
                out.advance(written);
                wrote = true;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(wrote)
}

/// A non-blocking socket with `TCP_NODELAY`.
fn connect(address: std::net::SocketAddr) -> TcpStream {
    let socket = TcpStream::connect(address).expect("connect");
    socket.set_nodelay(true).expect("nodelay");
    socket.set_nonblocking(true).expect("non-blocking");
    socket
}

/// The edge-triggered shape: write until `WouldBlock`, read until
/// `WouldBlock` (handing each read to [`Connection::poll_response`] at
/// once), and sleep in `poll(2)` only when neither moved.
mod nonblocking {
    use beanstalk_proto::read_low_water::{self, ReadLowWater};
    use beanstalk_proto::{Connection, Token};
    use bytes::BytesMut;

    use super::*;

    fn send(conn: &mut Connection, work: &Workload, what: &Sent, out: &mut WriteBuf) -> Token {
        let sent = match *what {
            Sent::Put(index) => {
                let put = cmd::Put::new(work.body(index), PutOptions::default()).expect("put");
                conn.send(&put, out)
            }
            Sent::Reserve => conn.send(&cmd::Reserve, out),
            Sent::Delete(id) => conn.send(&cmd::Delete::new(id), out),
        };
        sent.expect("a valid command")
    }

    /// Runs the whole workload over `socket`.
    pub(super) fn run(socket: &mut TcpStream, config: Config, plan: &mut Plan<'_>) {
        let work = plan.work;
        let mut conn = Connection::new(config);
        let mut out = WriteBuf::new();
        let mut input = BytesMut::new();
        let mut scratch = vec![0u8; 64 * KIB];
        // Replies gather in the kernel before `poll` wakes (`SO_RCVLOWAT`),
        // as many as the commands in flight are sure to bring.
        let mut low_water = ReadLowWater::default();
        // What each command in flight was sent for, in send order, as the
        // connection hands back the replies.
        let mut sent: VecDeque<(Token, Sent)> = VecDeque::new();
        while !plan.is_done() {
            while let Some(what) = plan.next(out.remaining()) {
                let token = send(&mut conn, work, &what, &mut out);
                sent.push_back((token, what));
            }
            let mut moved = write_some(socket, &mut out).expect("write");
            loop {
                let read = match socket.read(&mut scratch) {
                    Ok(0) => {
                        let eof = conn.handle_eof(&input);
                        panic!("the server closed the connection: {eof:?}");
                    }
                    Ok(read) => read,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => panic!("read: {e}"),
                };
                moved = true;
                input.extend_from_slice(&scratch[..read]);
                while let Some((token, reply)) = conn.poll_response(&mut input).expect("reply") {
                    let (expected, what) = sent.pop_front().expect("a command in flight");
                    assert_eq!(token, expected);
                    match what {
                        Sent::Put(index) => plan.inserted(index, reply),
                        Sent::Reserve => {
                            let delete = plan.reserved(reply);
                            let token = send(&mut conn, work, &delete, &mut out);
                            sent.push_back((token, delete));
                        }
                        Sent::Delete(id) => plan.deleted(id, reply),
                    }
                }
            }
            if !moved {
                read_low_water::update_on(socket, &mut low_water, &conn).expect("SO_RCVLOWAT");
                wait(socket, out.has_remaining());
            }
        }
        assert_eq!(conn.in_flight(), 0);
        assert!(input.is_empty() && out.is_empty());
    }
}

#[test]
fn a_nonblocking_loop_pipelines_ten_thousand_puts_then_reserves_and_deletes_them() {
    let (server, config) = server();
    let work = Workload::full();
    let mut plan = Plan::new(&work);
    let mut socket = connect(server.tcp_addr());
    nonblocking::run(&mut socket, config, &mut plan);
    plan.check(&server);
}

/// The io_uring shape: the caller owns one fixed read buffer and keeps no
/// [`Connection`](beanstalk_proto::Connection). Replies are framed with
/// [`frame::parse_frame`] straight from the fixed buffer; only the start
/// of a reply that a read cut off is copied aside, to be completed by the
/// next reads. The caller keeps what [`Connection`](beanstalk_proto::Connection)
/// would: each command's [`CommandKind`], in send order, to check its
/// reply with ([`CommandKind::check_reply`]) and type it with.
mod fixed_buffer {
    use super::*;

    /// The state of the loop but its buffers.
    struct Driver<'p, 'w> {
        plan: &'p mut Plan<'w>,
        config: Config,
        limits: Limits,
        out: WriteBuf,
        in_flight: VecDeque<(CommandKind, Sent)>,
    }

    impl Driver<'_, '_> {
        /// What `Connection::send` does: check against the configuration,
        /// encode, remember the kind.
        fn send(&mut self, what: Sent) {
            fn encode<R: Request>(request: &R, config: &Config, out: &mut WriteBuf) -> CommandKind {
                request.check(config).expect("fits the configured job size");
                request.encode(out);
                R::KIND
            }
            let kind = match what {
                Sent::Put(index) => {
                    let body = self.plan.work.body(index);
                    let put = cmd::Put::new(body, PutOptions::default()).expect("put");
                    encode(&put, &self.config, &mut self.out)
                }
                Sent::Reserve => encode(&cmd::Reserve, &self.config, &mut self.out),
                Sent::Delete(id) => encode(&cmd::Delete::new(id), &self.config, &mut self.out),
            };
            self.in_flight.push_back((kind, what));
        }

        fn send_more(&mut self) {
            while let Some(what) = self.plan.next(self.out.remaining()) {
                self.send(what);
            }
        }

        /// Handles every whole reply at the start of `bytes`; returns how
        /// many bytes they took.
        fn replies(&mut self, bytes: &[u8]) -> usize {
            let mut used = 0;
            loop {
                let rest = &bytes[used..];
                let frame = match frame::parse_frame(rest, &self.limits).expect("a valid reply") {
                    Status::Complete(frame) => frame,
                    Status::Partial => return used,
                };
                let (kind, what) = self.in_flight.pop_front().expect("a command in flight");
                kind.check_reply(&frame.head).expect("a reply that fits");
                let reply = owned(&frame, rest);
                used += frame.len;
                match what {
                    Sent::Put(index) => self.plan.inserted(index, reply),
                    Sent::Reserve => {
                        let delete = self.plan.reserved(reply);
                        self.send(delete);
                    }
                    Sent::Delete(id) => self.plan.deleted(id, reply),
                }
            }
        }
    }

    /// The reply as [`Request::from_response`] takes it: the body copied
    /// out of the caller's buffer, which is about to be reused.
    fn owned(frame: &Frame<'_>, bytes: &[u8]) -> Response {
        let body = || Bytes::copy_from_slice(frame.body(bytes).expect("a whole frame"));
        match frame.head {
            Head::Inserted(id) => Response::Inserted(id),
            Head::Buried(id) => Response::Buried(id),
            Head::Using(name) => Response::Using(Tube::new(name).expect("a checked name")),
            Head::Reserved { id, .. } | Head::Found { id, .. } => {
                Response::Job(Job::new(id, body()))
            }
            Head::Ok { .. } => Response::Yaml(body()),
            Head::Watching(count) => Response::Watching(count),
            Head::Kicked(count) => Response::Kicked(count),
            Head::Word(word) => Response::Word(word),
            other => panic!("a reply this test does not know: {other:?}"),
        }
    }

    /// Runs the whole workload over `socket`, reading `read_size` bytes at
    /// a time into one buffer.
    pub(super) fn run(
        socket: &mut TcpStream,
        config: Config,
        plan: &mut Plan<'_>,
        read_size: usize,
    ) {
        let mut driver = Driver {
            plan,
            config,
            limits: config.limits(),
            out: WriteBuf::new(),
            in_flight: VecDeque::new(),
        };
        let mut fixed = vec![0u8; read_size];
        // The start of a reply that the last read cut off.
        let mut partial: Vec<u8> = Vec::new();
        while !driver.plan.is_done() {
            driver.send_more();
            let mut moved = write_some(socket, &mut driver.out).expect("write");
            loop {
                let read = match socket.read(&mut fixed) {
                    Ok(0) => panic!("the server closed the connection"),
                    Ok(read) => read,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => panic!("read: {e}"),
                };
                moved = true;
                let arrived = &fixed[..read];
                if partial.is_empty() {
                    let used = driver.replies(arrived);
                    partial.extend_from_slice(&arrived[used..]);
                } else {
                    partial.extend_from_slice(arrived);
                    let used = driver.replies(&partial);
                    partial.drain(..used);
                }
            }
            if !moved {
                wait(socket, driver.out.has_remaining());
            }
        }
        assert!(driver.in_flight.is_empty() && driver.out.is_empty() && partial.is_empty());
    }
}

/// Runs `work` through the fixed-buffer loop with reads of `read_size`,
/// straight to the server or through a proxy that forwards the replies a
/// byte at a time.
fn fixed_buffer(work: &Workload, read_size: usize, replies_byte_by_byte: bool) {
    let (server, config) = server();
    let proxy = replies_byte_by_byte.then(|| {
        let plan = FaultPlan::new().one_byte_chunks(Direction::Downstream);
        FaultProxy::start(&server.addr(), plan)
    });
    let address = proxy
        .as_ref()
        .map_or_else(|| server.tcp_addr(), FaultProxy::addr);
    let mut plan = Plan::new(work);
    let mut socket = connect(address);
    fixed_buffer::run(&mut socket, config, &mut plan, read_size);
    plan.check(&server);
}

#[test]
fn a_fixed_4_kib_read_buffer_frames_ten_thousand_jobs() {
    fixed_buffer(&Workload::full(), 4 * KIB, false);
}

#[test]
fn a_fixed_7_byte_read_buffer_frames_replies_cut_anywhere() {
    fixed_buffer(&Workload::light(true), 7, false);
}

#[test]
fn a_fixed_1_byte_read_buffer_frames_replies_a_byte_at_a_time() {
    fixed_buffer(&Workload::light(true), 1, false);
}

/// Every reply cut at every offset by the sender, not only by the reader:
/// each byte in a TCP segment of its own. (The 1 MiB job is left out: a
/// byte per segment, it alone would take seconds.)
#[test]
fn replies_sent_a_byte_per_segment_are_framed_from_a_fixed_buffer() {
    fixed_buffer(&Workload::light(false), 4 * KIB, true);
}
