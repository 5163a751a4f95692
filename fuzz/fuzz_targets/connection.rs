//! `connection`: the state machine under arbitrary commands and replies.
//!
//! Commands of all 25 kinds (invalid arguments included) are sent through a
//! `Connection` with a 1,024-byte job limit; reply bytes (well-formed
//! replies, near-misses and raw bytes) are fed into a `BytesMut` in
//! arbitrary chunks and polled until `None` or an error; at the end comes
//! `handle_eof`. Checked against a model: nothing panics; replies come out
//! for the oldest command, with strictly increasing tokens, consuming
//! exactly one frame; an accepted reply always types without a protocol
//! error; the session follows confirmed `use`/`watch`/`ignore`; once an
//! error is returned, every later poll returns it again and every send
//! fails with `CommandError::Broken`; `in_flight` and `bytes_in_flight`
//! match the model; the fewest reply bytes still to come
//! (`least_reply_bytes_to_come`) match the model after every poll; the
//! confirmed session restores on a fresh connection.
#![no_main]

use std::collections::VecDeque;

use arbitrary::Arbitrary;
use beanstalk_proto::cmd::{CommandKind, Request};
use beanstalk_proto::frame::{Limits, Status, parse_frame};
use beanstalk_proto::stats::{JobStats, ServerStats, TubeList, TubeStats};
use beanstalk_proto::{
    CommandError, Config, Connection, Error, ProtocolError, Response, State, WriteBuf,
};
use beanstalk_proto_fuzz::{Cmd, Expect, SessionOp, TubeArg, Visit, check_wire};
use bytes::{Buf, Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;

const MAX_JOB_SIZE: u32 = 1024;
const STATS_1_12: &[u8] = include_bytes!("../../beanstalk-proto/benches/stats-1.12.bin");
const WORDS: &[&str] = &[
    "EXPECTED_CRLF",
    "JOB_TOO_BIG",
    "DRAINING",
    "DEADLINE_SOON",
    "TIMED_OUT",
    "DELETED",
    "NOT_FOUND",
    "RELEASED",
    "TOUCHED",
    "NOT_IGNORED",
    "PAUSED",
    "OUT_OF_MEMORY",
    "INTERNAL_ERROR",
    "BAD_FORMAT",
    "UNKNOWN_COMMAND",
    "BURIED",
    "KICKED",
];

/// One server reply, mostly well-formed; `announced` overrides the length
/// on the line to produce bodies that are too long, too short or too big.
#[derive(Arbitrary, Debug)]
enum Reply {
    Raw(Vec<u8>),
    Word(u8),
    Inserted(u64),
    Buried(u64),
    Using(TubeArg),
    Job {
        found: bool,
        id: u64,
        body: Vec<u8>,
        announced: Option<u32>,
    },
    Yaml {
        body: Yaml,
        announced: Option<u32>,
    },
    /// A job past the cap, its body `extra` bytes over it: the connection
    /// drops the body and stays in sync (random bodies rarely get there).
    Oversized {
        found: bool,
        id: u64,
        extra: u16,
        terminated: bool,
    },
    Watching(u64),
    Kicked(u64),
}

#[derive(Arbitrary, Debug)]
enum Yaml {
    Raw(Vec<u8>),
    Stats,
    Tubes(Vec<TubeArg>),
    Pairs(Vec<(String, String)>),
}

impl Reply {
    fn write(&self, out: &mut Vec<u8>) {
        let with_body = |out: &mut Vec<u8>, head: String, body: &[u8], announced: Option<u32>| {
            let len = announced.map_or(body.len(), |n| n as usize);
            out.extend_from_slice(format!("{head} {len}\r\n").as_bytes());
            out.extend_from_slice(body);
            out.extend_from_slice(b"\r\n");
        };
        match self {
            Self::Raw(bytes) => out.extend_from_slice(bytes),
            Self::Word(i) => out.extend_from_slice(
                format!("{}\r\n", WORDS[usize::from(*i) % WORDS.len()]).as_bytes(),
            ),
            Self::Inserted(id) => out.extend_from_slice(format!("INSERTED {id}\r\n").as_bytes()),
            Self::Buried(id) => out.extend_from_slice(format!("BURIED {id}\r\n").as_bytes()),
            Self::Using(tube) => {
                out.extend_from_slice(format!("USING {}\r\n", tube.name()).as_bytes())
            }
            Self::Watching(n) => out.extend_from_slice(format!("WATCHING {n}\r\n").as_bytes()),
            Self::Kicked(n) => out.extend_from_slice(format!("KICKED {n}\r\n").as_bytes()),
            Self::Job {
                found,
                id,
                body,
                announced,
            } => {
                let word = if *found { "FOUND" } else { "RESERVED" };
                with_body(out, format!("{word} {id}"), body, *announced);
            }
            Self::Oversized {
                found,
                id,
                extra,
                terminated,
            } => {
                let word = if *found { "FOUND" } else { "RESERVED" };
                let len = MAX_JOB_SIZE as usize + 1 + usize::from(*extra % 4096);
                out.extend_from_slice(format!("{word} {id} {len}\r\n").as_bytes());
                out.extend(std::iter::repeat_n(b'x', len));
                out.extend_from_slice(if *terminated { b"\r\n" } else { b"xx" });
            }
            Self::Yaml { body, announced } => {
                let body = match body {
                    Yaml::Raw(bytes) => bytes.clone(),
                    Yaml::Stats => {
                        // The real reply without its `OK <n>` line and final CRLF.
                        let start = STATS_1_12
                            .iter()
                            .position(|&b| b == b'\n')
                            .map_or(0, |i| i + 1);
                        STATS_1_12[start..STATS_1_12.len() - 2].to_vec()
                    }
                    Yaml::Tubes(tubes) => {
                        let mut list = b"---\n".to_vec();
                        for tube in tubes {
                            list.extend_from_slice(format!("- {}\n", tube.name()).as_bytes());
                        }
                        list
                    }
                    Yaml::Pairs(pairs) => {
                        let mut dict = b"---\n".to_vec();
                        for (key, value) in pairs {
                            dict.extend_from_slice(format!("{key}: {value}\n").as_bytes());
                        }
                        dict
                    }
                };
                with_body(out, "OK".to_owned(), &body, *announced);
            }
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Action {
    Send(Cmd),
    Reply(Reply),
    /// Moves up to this many pending reply bytes (0: all) into the read
    /// buffer, then polls until `None` or an error.
    Feed(u16),
    /// Abandons the replies in flight when the value is 0xab (rare).
    Abandon(u8),
    /// Signals end of stream when the value is 0xe0 (rare).
    Eof(u8),
}

#[derive(Arbitrary, Debug)]
struct Input {
    max_yaml_body: Option<u16>,
    actions: Vec<Action>,
}

/// Types a reply as the command `R` would.
fn decode<R: Request>(response: Response) -> Result<(), Error> {
    R::from_response(response).map(drop)
}

/// A command in flight, as the model sees it.
struct Sent {
    token: u64,
    kind: CommandKind,
    decode: fn(Response) -> Result<(), Error>,
    session: Option<(SessionOp, String)>,
    /// The command's length as written.
    bytes: usize,
}

struct Driver {
    conn: Connection,
    limits: Limits,
    out: WriteBuf,
    /// Reply bytes not yet delivered to the read buffer.
    pending: VecDeque<u8>,
    src: BytesMut,
    queue: VecDeque<Sent>,
    sent: u64,
    last_token: Option<u64>,
    error: Option<ProtocolError>,
    /// `quit` sent or a clean end of stream: sending is over.
    closed: bool,
    using: String,
    watching: Vec<String>,
    /// A job reply past the cap whose body the connection is dropping.
    skip: Option<Skip>,
}

/// A job reply past the cap, as the model follows it.
#[derive(Debug, Clone, Copy)]
struct Skip {
    id: u64,
    len: u64,
    /// The whole reply's bytes: line, body, CRLF.
    total: usize,
    /// Bytes of it the connection has consumed so far.
    consumed: usize,
}

/// `RESERVED <id> <len>\r\n` or `FOUND <id> <len>\r\n` at the start of
/// `src`, with a body past the cap that a beanstalkd could still send (at
/// most 1 GiB): the reply whose body the connection drops.
fn oversized_job_line(src: &[u8]) -> Option<Skip> {
    let end = src.windows(2).position(|w| w == b"\r\n")?;
    let line = std::str::from_utf8(src.get(..end)?).ok()?;
    let mut words = line.split(' ');
    let (Some("RESERVED" | "FOUND"), Some(id), Some(len), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return None;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(id) || !digits(len) {
        return None;
    }
    let (id, len): (u64, u64) = (id.parse().ok()?, len.parse().ok()?);
    let fits = len > u64::from(MAX_JOB_SIZE) && len <= 1 << 30;
    fits.then(|| Skip {
        id,
        len,
        total: end + 2 + len as usize + 2,
        consumed: 0,
    })
}

impl Visit for Driver {
    fn visit<R: Request>(&mut self, built: Result<R, CommandError>, expect: Expect) {
        let request = match built {
            Ok(request) => request,
            Err(error) => {
                assert_eq!(Some(error), expect.error, "constructor error");
                return;
            }
        };
        assert_eq!(expect.error, None, "constructor accepted a bad argument");
        let queued_before = self.out.remaining();
        let result = self.conn.send(&request, &mut self.out);
        let bytes = self.out.remaining() - queued_before;
        if result.is_err() {
            assert_eq!(bytes, 0, "a refused command writes nothing");
        }
        match (self.error, result) {
            (Some(cause), result) => assert_eq!(result, Err(CommandError::Broken(cause))),
            (None, result) if self.closed => assert_eq!(result, Err(CommandError::Closed)),
            (None, result)
                if expect
                    .put_len
                    .is_some_and(|len| len > MAX_JOB_SIZE as usize) =>
            {
                let len = expect.put_len.unwrap_or_default();
                assert_eq!(
                    result,
                    Err(CommandError::JobTooBig {
                        len,
                        max: MAX_JOB_SIZE
                    })
                );
            }
            (None, Ok(token)) => {
                assert_eq!(token.get(), self.sent, "tokens count the commands sent");
                self.sent += 1;
                self.closed = R::KIND == CommandKind::Quit;
                self.queue.push_back(Sent {
                    token: token.get(),
                    kind: R::KIND,
                    decode: decode::<R>,
                    session: expect.session,
                    bytes,
                });
            }
            (None, Err(error)) => panic!("send refused a valid command: {error:?}"),
        }
        self.check_in_flight();
    }
}

impl Driver {
    fn check_in_flight(&self) {
        let in_flight = self.conn.in_flight();
        assert!(
            in_flight as u64 <= self.sent,
            "{in_flight} in flight after {} sends",
            self.sent
        );
        match self.error {
            Some(cause) => {
                assert_eq!(in_flight, 0);
                assert_eq!(self.conn.bytes_in_flight(), 0);
                assert_eq!(self.conn.state(), State::Broken(cause));
            }
            None => {
                assert_eq!(in_flight, self.queue.len());
                let bytes: usize = self.queue.iter().map(|sent| sent.bytes).sum();
                assert_eq!(self.conn.bytes_in_flight(), bytes);
            }
        }
    }

    fn fail(&mut self, error: ProtocolError) {
        assert_eq!(self.error, None, "a second, different error");
        self.error = Some(error);
        self.queue.clear();
        self.skip = None;
    }

    /// Polls once; returns whether to poll again.
    fn poll(&mut self) -> bool {
        // What the stateless parser sees, to check what the connection consumes.
        let frame = match parse_frame(&self.src, &self.limits) {
            Ok(Status::Complete(frame)) => {
                Some((frame.len, frame.body(&self.src).map(Bytes::copy_from_slice)))
            }
            _ => None,
        };
        let starts_skip = if self.skip.is_none() {
            oversized_job_line(&self.src)
        } else {
            None
        };
        let before = self.src.len();
        let result = self.conn.poll_response(&mut self.src);
        let more = match (self.error, result) {
            (Some(cause), result) => {
                assert_eq!(
                    result,
                    Err(cause),
                    "a broken connection returns its first error"
                );
                assert_eq!(self.src.len(), before);
                false
            }
            (None, Ok(None)) => {
                assert!(
                    self.queue
                        .front()
                        .is_none_or(|sent| sent.kind != CommandKind::Quit)
                );
                assert!(
                    self.src.is_empty() || frame.is_none(),
                    "a whole reply was left unread"
                );
                let consumed = before - self.src.len();
                // Only a job reply past the cap is consumed without a reply.
                if self.skip.is_none() && consumed > 0 {
                    self.skip = Some(starts_skip.expect("bytes consumed without a reply"));
                }
                if let Some(skip) = self.skip.as_mut() {
                    skip.consumed += consumed;
                    assert!(skip.consumed < skip.total, "{skip:?}: the reply is whole");
                }
                false
            }
            (None, Ok(Some((token, response)))) => {
                let sent = self
                    .queue
                    .pop_front()
                    .expect("a reply with nothing in flight");
                assert_eq!(token.get(), sent.token, "replies come in send order");
                assert!(
                    self.last_token.is_none_or(|last| last < token.get()),
                    "tokens increase"
                );
                self.last_token = Some(token.get());
                if let Response::JobTooLarge { id, len, max } = response {
                    let skip = self
                        .skip
                        .take()
                        .or(starts_skip)
                        .expect("JobTooLarge without a job line past the cap");
                    assert_eq!(skip.consumed + before - self.src.len(), skip.total);
                    assert_eq!((id, len, max), (skip.id, skip.len, MAX_JOB_SIZE as usize));
                } else if sent.kind == CommandKind::Quit {
                    assert!(self.skip.is_none());
                    assert_eq!(response, Response::Closing);
                    assert_eq!(self.src.len(), before, "quit consumes no bytes");
                } else {
                    assert!(self.skip.is_none());
                    let (len, body) = frame.expect("a reply without a whole frame");
                    assert_eq!(before - self.src.len(), len, "bytes consumed");
                    match &response {
                        Response::Job(job) => assert_eq!(Some(&job.body), body.as_ref()),
                        Response::Yaml(yaml) => {
                            assert_eq!(Some(yaml), body.as_ref());
                            exercise_yaml(yaml);
                        }
                        _ => assert_eq!(body, None),
                    }
                }
                self.confirm(&sent, &response);
                let typed = (sent.decode)(response.clone());
                assert!(
                    !matches!(typed, Err(Error::Protocol(_))),
                    "{:?} accepted {response:?} but typing it fails: {typed:?}",
                    sent.kind
                );
                true
            }
            (None, Err(error)) => {
                self.fail(error);
                false
            }
        };
        self.check_in_flight();
        if self.error.is_none() {
            self.check_reply_bytes_to_come();
        }
        more
    }

    /// What a blocking read's mark may count on: the shortest replies of
    /// the commands ahead of the first without a short reply, the oldest
    /// one's only when nothing of the next reply is buffered.
    fn check_reply_bytes_to_come(&self) {
        let shortest: Vec<usize> = self
            .queue
            .iter()
            .take_while(|sent| sent.kind.has_short_reply())
            .map(|sent| sent.kind.shortest_reply())
            .collect();
        for replies in [0, 1, 2, 3, 10, usize::MAX] {
            let expected: usize = if self.src.is_empty() {
                shortest.iter().take(replies).sum()
            } else {
                shortest
                    .iter()
                    .skip(1)
                    .take(replies.saturating_sub(1))
                    .sum()
            };
            assert_eq!(
                self.conn.least_reply_bytes_to_come(replies),
                expected,
                "{replies} replies, {} bytes buffered",
                self.src.len()
            );
        }
    }

    /// Applies a confirmed `use`/`watch`/`ignore` to the model session and
    /// compares it with the connection's.
    fn confirm(&mut self, sent: &Sent, response: &Response) {
        match (&sent.session, response) {
            (Some((SessionOp::Use, tube)), Response::Using(named)) => {
                assert_eq!(named.as_str(), tube, "USING names the tube asked for");
                self.using.clone_from(tube);
            }
            (Some((SessionOp::Watch, tube)), Response::Watching(_))
                if !self.watching.contains(tube) =>
            {
                self.watching.push(tube.clone());
            }
            (Some((SessionOp::Ignore, tube)), Response::Watching(_)) => {
                self.watching.retain(|t| t != tube)
            }
            _ => {}
        }
        let session = self.conn.session();
        assert_eq!(session.using().as_str(), self.using);
        assert!(
            session
                .watching()
                .iter()
                .map(|t| t.as_str())
                .eq(self.watching.iter().map(String::as_str))
        );
    }

    fn feed(&mut self, n: usize) {
        let n = if n == 0 {
            self.pending.len()
        } else {
            n.min(self.pending.len())
        };
        self.src.extend(self.pending.drain(..n));
        for _ in 0..10_000 {
            if !self.poll() {
                break;
            }
        }
    }

    fn eof(&mut self) {
        let result = self.conn.handle_eof(&self.src);
        match self.error {
            Some(cause) => assert_eq!(result, Err(cause)),
            None if self.src.is_empty()
                && self.queue.iter().all(|s| s.kind == CommandKind::Quit) =>
            {
                assert_eq!(result, Ok(()));
                self.closed = true;
            }
            None => {
                // A `quit` still queued is not waiting for the server.
                let unanswered = self.queue.iter().filter(|s| s.kind != CommandKind::Quit);
                let expected = ProtocolError::UnexpectedEof {
                    in_flight: unanswered.count(),
                };
                assert_eq!(result, Err(expected));
                self.fail(expected);
            }
        }
        self.check_in_flight();
    }
}

/// Runs every stats parser and accessor over a YAML body.
fn exercise_yaml(body: &Bytes) {
    let server = ServerStats::parse(body.clone());
    let _ = server.iter().count() + server.get("version").map_or(0, str::len);
    let tube = TubeStats::parse(body.clone());
    let _ = tube.iter().count() + tube.name.len();
    let job = JobStats::parse(body.clone());
    let _ = job.iter().count() + job.tube.len();
    let list = TubeList::parse(body.clone());
    let tubes = list.to_tubes();
    assert_eq!(tubes.len(), list.len());
    assert!(tubes.iter().all(|t| list.contains(t.as_str())));
}

fuzz_target!(|input: Input| {
    let mut config = Config::default().max_job_size(MAX_JOB_SIZE);
    if let Some(max) = input.max_yaml_body {
        config = config.max_yaml_body(usize::from(max));
    }
    let mut driver = Driver {
        conn: Connection::new(config),
        limits: config.limits(),
        out: WriteBuf::new(),
        pending: VecDeque::new(),
        src: BytesMut::new(),
        queue: VecDeque::new(),
        sent: 0,
        last_token: None,
        error: None,
        closed: false,
        using: "default".to_owned(),
        watching: vec!["default".to_owned()],
        skip: None,
    };
    for action in input.actions.iter().take(256) {
        match action {
            Action::Send(command) => command.apply(&mut driver),
            Action::Reply(reply) => {
                let mut bytes = Vec::new();
                reply.write(&mut bytes);
                driver.pending.extend(bytes);
            }
            Action::Feed(n) => driver.feed(usize::from(*n)),
            Action::Abandon(0xab) => {
                driver.conn.abandon();
                if driver.error.is_none() {
                    driver.fail(ProtocolError::Abandoned);
                }
                driver.check_in_flight();
            }
            Action::Eof(0xe0) => driver.eof(),
            Action::Abandon(_) | Action::Eof(_) => {}
        }
    }
    driver.feed(0);
    driver.eof();
    driver.feed(0);
    // After the end, nothing can be sent.
    Cmd::Delete(1).apply(&mut driver);
    assert!(driver.error.is_some() || driver.closed);

    // The confirmed session can always be restored on a new connection.
    let session = driver.conn.session().clone();
    let mut fresh = Connection::new(config);
    let mut out = WriteBuf::new();
    let sent = fresh
        .restore_session(&session, &mut out)
        .expect("restoring a confirmed session");
    let expected = usize::from(driver.using != "default")
        + driver.watching.iter().filter(|t| *t != "default").count()
        + usize::from(!driver.watching.iter().any(|t| t == "default"));
    assert_eq!((sent, fresh.in_flight()), (expected, expected));
    assert_eq!(check_wire(&out.copy_to_bytes(out.remaining())), expected);
});
