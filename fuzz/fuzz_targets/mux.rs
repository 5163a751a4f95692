//! `mux`: the shared-connection bookkeeping under arbitrary callers, a model
//! server, and arbitrary faults.
//!
//! Four handles, each with its own tube in use, enqueue commands of all 25
//! kinds (invalid arguments included) into one `Mux`. A driver takes the
//! output into a model beanstalkd, which keeps the connection's tube in use,
//! answers each command (or refuses it with `OUT_OF_MEMORY`), and writes into
//! each reply where the command was carried out: the job id of an `INSERTED`,
//! `FOUND` or `KICKED` reply indexes a log of the tube in use when the server
//! ran the command. Replies come back in arbitrary chunks, mixed with
//! arbitrary bytes, I/O failures and end of stream. Checked: nothing panics;
//! the output is a well-formed command stream; every accepted caller gets
//! exactly one reply, in the order of enqueueing, and a refused one none;
//! every reply a caller gets as a success for a command that acts on the
//! tube in use (`put`, `peek-*`, `kick`, `list-tube-used`) was carried out
//! on the tube its handle had when it enqueued; a caller's confirmed `use`
//! moves its handle (`follow_use`), a refused one does not; commands that
//! could hold everyone's replies back are refused; once the mux stops, every
//! caller has been answered and every later command is refused.
#![no_main]

use std::collections::VecDeque;

use arbitrary::Arbitrary;
use beanstalk_proto::cmd::{CommandKind, Request};
use beanstalk_proto::mux::{Mux, follow_use};
use beanstalk_proto::{CommandError, Config, Error, ProtocolError, Response, Tube, WriteBuf};
use beanstalk_proto_fuzz::{Cmd, Expect, Visit, check_wire};
use bytes::{Buf, BytesMut};
use libfuzzer_sys::fuzz_target;

const HANDLES: usize = 4;
const MAX_JOB_SIZE: u32 = 1024;

#[derive(Arbitrary, Debug)]
enum Op {
    /// A caller on handle `handle % 4` sends `cmd`.
    Enqueue { handle: u8, cmd: Cmd },
    /// The driver takes what is due and writes it to the server.
    Take,
    /// The server runs up to `commands` of what it was sent, refusing those
    /// whose bit in `refuse` is set; the replies arrive `chunk` bytes at a
    /// time (0 counts as 1), each piece dispatched.
    Serve {
        commands: u8,
        refuse: u16,
        chunk: u8,
    },
    /// Bytes that no server sent arrive.
    Garbage(Vec<u8>),
    /// The socket fails (an I/O error or a timeout in a real driver).
    Fail,
    /// The server closes the connection.
    Eof,
}

/// What the harness knows of one caller's command.
#[derive(Debug)]
struct Waiting {
    waiter: u32,
    handle: usize,
    kind: CommandKind,
    /// The handle's tube when it enqueued, for commands that act on it.
    tube: Option<Tube>,
    /// The tube a `use` asks for.
    asked: Option<Tube>,
    /// The caller stopped waiting (its handle made another call, as after a
    /// dropped future): the reply goes nowhere and moves no handle.
    cancelled: bool,
}

/// A beanstalkd reduced to what the mux depends on: the tube in use and the
/// order of replies.
#[derive(Default)]
struct ModelServer {
    input: Vec<u8>,
    using: Vec<u8>,
    /// The tube in use when each logged command ran, indexed by job id.
    log: Vec<Vec<u8>>,
    closed: bool,
    /// Bytes it did not send have arrived: what a reply says (a job id, a
    /// tube), and whether the stream can still end in step, is no longer
    /// the model's to check.
    forged: bool,
}

impl ModelServer {
    fn new() -> Self {
        Self {
            using: b"default".to_vec(),
            ..Self::default()
        }
    }

    fn logged(&mut self) -> usize {
        self.log.push(self.using.clone());
        self.log.len() - 1
    }

    /// Runs the next command of `input` and appends its reply to `out`.
    /// Returns false when there is none (or the server has closed).
    fn run_one(&mut self, refuse: bool, out: &mut Vec<u8>) -> bool {
        if self.closed || self.input.is_empty() {
            return false;
        }
        let lf = self
            .input
            .iter()
            .position(|&b| b == b'\n')
            .expect("the mux writes whole commands");
        let line = String::from_utf8(self.input[..lf - 1].to_vec()).expect("ASCII command line");
        let mut consumed = lf + 1;
        let mut words = line.split(' ');
        let word = words.next().unwrap_or_default();
        let args: Vec<&str> = words.collect();
        if word == "put" {
            let len: usize = args[3].parse().expect("body length");
            consumed += len + 2;
        }
        self.input.drain(..consumed);
        if word == "quit" {
            self.closed = true;
            return true;
        }
        if refuse {
            out.extend_from_slice(b"OUT_OF_MEMORY\r\n");
            return true;
        }
        let reply = match word {
            "put" => format!("INSERTED {}\r\n", self.logged()),
            "use" => {
                self.using = args[0].as_bytes().to_vec();
                format!("USING {}\r\n", args[0])
            }
            "reserve-with-timeout" => "TIMED_OUT\r\n".to_owned(),
            "watch" => "WATCHING 2\r\n".to_owned(),
            "ignore" => "NOT_IGNORED\r\n".to_owned(),
            "peek-ready" | "peek-delayed" | "peek-buried" => {
                format!("FOUND {} 1\r\nx\r\n", self.logged())
            }
            "kick" => format!("KICKED {}\r\n", self.logged()),
            "list-tube-used" => {
                format!("USING {}\r\n", String::from_utf8_lossy(&self.using))
            }
            "stats" | "list-tubes" | "list-tubes-watched" => "OK 4\r\n---\n\r\n".to_owned(),
            "pause-tube" => "PAUSED\r\n".to_owned(),
            // reserve-job, delete, release, bury, touch, peek, kick-job,
            // stats-job, stats-tube.
            _ => "NOT_FOUND\r\n".to_owned(),
        };
        out.extend_from_slice(reply.as_bytes());
        true
    }
}

/// The handles and the calls waiting for replies.
struct Callers {
    handles: [Tube; HANDLES],
    /// Each handle's call in flight: a handle makes one call at a time.
    in_call: [Option<u32>; HANDLES],
    waiting: VecDeque<Waiting>,
}

struct Harness {
    mux: Mux<u32>,
    callers: Callers,
    next_waiter: u32,
    server: ModelServer,
    rbuf: BytesMut,
    wire: Vec<u8>,
    /// The handle of the command being enqueued.
    current: usize,
}

impl Visit for Harness {
    fn visit<R: Request>(&mut self, built: Result<R, CommandError>, _expect: Expect) {
        let Ok(request) = built else { return };
        let handle = self.current;
        let waiter = self.next_waiter;
        let stopping = self.mux.is_stopping();
        match self
            .mux
            .enqueue(&self.callers.handles[handle], &request, waiter)
        {
            Ok(()) => {
                assert!(!stopping, "a stopped mux took a command");
                assert!(
                    !request.reply_timeout().may_wait(),
                    "a command that may hold everyone's replies was taken"
                );
                self.next_waiter += 1;
                let callers = &mut self.callers;
                let earlier = callers.in_call[handle].replace(waiter);
                if let Some(entry) = callers
                    .waiting
                    .iter_mut()
                    .find(|w| Some(w.waiter) == earlier)
                {
                    entry.cancelled = true;
                }
                callers.waiting.push_back(Waiting {
                    waiter,
                    handle,
                    kind: R::KIND,
                    tube: R::KIND
                        .depends_on_tube_in_use()
                        .then(|| callers.handles[handle].clone()),
                    asked: (R::KIND == CommandKind::Use)
                        .then(|| request.session_tube().cloned())
                        .flatten(),
                    cancelled: false,
                });
            }
            Err(Error::Command(CommandError::WouldBlockShared)) => {
                assert!(request.reply_timeout().may_wait(), "refused as blocking");
            }
            Err(Error::Command(
                CommandError::Closed | CommandError::Broken(_) | CommandError::JobTooBig { .. },
            )) => {}
            Err(other) => panic!("unexpected refusal: {other:?}"),
        }
    }
}

impl Callers {
    /// Checks one delivery: the right caller, in order, with a reply that
    /// was carried out on its handle's tube (unless garbage may have
    /// answered it).
    fn deliver(&mut self, server: &ModelServer, waiter: u32, reply: Result<Response, Error>) {
        let Self {
            handles,
            in_call,
            waiting,
        } = self;
        let entry = waiting.pop_front().expect("a reply for no caller");
        assert_eq!(entry.waiter, waiter, "replies reach callers in order");
        if let (Some(expected), Ok(response), false) = (&entry.tube, &reply, server.forged) {
            let ran_on: Option<&[u8]> = match response {
                Response::Inserted(id) | Response::Kicked(Some(id)) => {
                    Some(&server.log[*id as usize])
                }
                Response::Job(job) => Some(&server.log[job.id as usize]),
                Response::Using(tube) => Some(tube.as_bytes()),
                _ => None,
            };
            if let Some(ran_on) = ran_on {
                assert_eq!(
                    ran_on,
                    expected.as_bytes(),
                    "{:?} ran on another tube than its handle's",
                    entry.kind
                );
            }
        }
        if entry.cancelled {
            return;
        }
        in_call[entry.handle] = None;
        // As the shared handles do with every reply of their calls.
        let before = handles[entry.handle].clone();
        follow_use(&mut handles[entry.handle], &reply);
        match (&entry.asked, &reply) {
            _ if server.forged => {}
            (Some(asked), Ok(Response::Using(_))) => {
                assert_eq!(
                    &handles[entry.handle], asked,
                    "a confirmed use moves its handle"
                );
            }
            // A reply to `list-tube-used` names the handle's own tube.
            _ => assert_eq!(
                handles[entry.handle], before,
                "only a confirmed use moves a handle"
            ),
        }
    }
}

impl Harness {
    fn new() -> Self {
        let config = Config::default().max_job_size(MAX_JOB_SIZE);
        Self {
            mux: Mux::new(config),
            callers: Callers {
                handles: core::array::from_fn(|_| Tube::DEFAULT),
                in_call: [None; HANDLES],
                waiting: VecDeque::new(),
            },
            next_waiter: 0,
            server: ModelServer::new(),
            rbuf: BytesMut::new(),
            wire: Vec::new(),
            current: 0,
        }
    }

    fn take(&mut self) {
        let mut out = WriteBuf::new();
        self.mux.take_output(&mut out);
        while out.has_remaining() {
            let chunk = out.chunk();
            self.wire.extend_from_slice(chunk);
            self.server.input.extend_from_slice(chunk);
            let n = chunk.len();
            out.advance(n);
        }
        // `quit` completes without bytes: a driver dispatches after taking.
        self.dispatch(&[], 1);
    }

    fn dispatch(&mut self, bytes: &[u8], chunk: usize) {
        let mut pieces = bytes.chunks(chunk.max(1)).peekable();
        loop {
            if self.mux.is_stopping() {
                return;
            }
            if let Some(piece) = pieces.next() {
                self.rbuf.extend_from_slice(piece);
            }
            let Self {
                mux,
                callers,
                server,
                rbuf,
                ..
            } = self;
            let result = mux.dispatch(rbuf, |waiter, reply| callers.deliver(server, waiter, reply));
            if result.is_err() {
                assert!(self.mux.is_stopping(), "a protocol error stops the mux");
            }
            if pieces.peek().is_none() {
                return;
            }
        }
    }

    fn serve(&mut self, commands: u8, refuse: u16, chunk: u8) {
        let mut replies = Vec::new();
        for i in 0..commands {
            let refused = refuse & (1 << (i % 16)) != 0;
            if !self.server.run_one(refused, &mut replies) {
                break;
            }
        }
        self.dispatch(&replies, usize::from(chunk));
    }

    fn fail(&mut self) {
        let Self {
            mux,
            callers,
            server,
            ..
        } = self;
        let first = Some(Error::Protocol(ProtocolError::Abandoned));
        mux.fail(ProtocolError::Abandoned, first, |waiter, reply| {
            assert!(reply.is_err(), "a failed connection answers with errors");
            callers.deliver(server, waiter, reply)
        });
    }

    fn end_of_stream(&mut self) {
        let Self {
            mux,
            callers,
            server,
            rbuf,
            ..
        } = self;
        mux.end_of_stream(rbuf, |waiter, reply| {
            assert!(reply.is_err(), "a closed connection answers with errors");
            callers.deliver(server, waiter, reply)
        });
    }

    fn stopped_answers_everyone(&self) {
        if self.mux.is_stopping() {
            assert!(
                self.callers.waiting.is_empty(),
                "a stopped mux left callers waiting"
            );
            assert!(self.mux.is_idle());
        }
    }
}

fuzz_target!(|ops: Vec<Op>| {
    let mut harness = Harness::new();
    for op in ops {
        match op {
            Op::Enqueue { handle, cmd } => {
                harness.current = usize::from(handle) % HANDLES;
                cmd.apply(&mut harness);
            }
            Op::Take => harness.take(),
            Op::Serve {
                commands,
                refuse,
                chunk,
            } => harness.serve(commands, refuse, chunk),
            Op::Garbage(bytes) => {
                harness.server.forged |= !bytes.is_empty();
                harness.dispatch(&bytes, bytes.len());
            }
            Op::Fail => {
                if !harness.mux.is_stopping() {
                    harness.fail();
                }
            }
            Op::Eof => {
                if !harness.mux.is_stopping() {
                    harness.end_of_stream();
                }
            }
        }
        harness.stopped_answers_everyone();
        assert_eq!(harness.callers.waiting.is_empty(), harness.mux.is_idle());
    }
    // Drive to the end: everything sent is answered, then the server closes.
    while !harness.mux.is_stopping() && !harness.mux.is_idle() {
        let pending = harness.callers.waiting.len();
        harness.take();
        harness.serve(u8::MAX, 0, u8::MAX);
        if harness.callers.waiting.len() == pending && !harness.mux.is_stopping() {
            // Nothing moved: only a quit the server already ran (or
            // garbage, as a body still to come) can hold replies back;
            // the close ends the rest.
            assert!(
                harness.server.closed || harness.server.forged,
                "the mux stalled with callers waiting"
            );
            break;
        }
    }
    if !harness.mux.is_stopping() {
        harness.end_of_stream();
    }
    assert!(
        harness.callers.waiting.is_empty(),
        "callers left without a reply"
    );
    check_wire(&harness.wire);
});
