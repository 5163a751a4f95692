//! Shared helpers for the integration tests: a comparable rendering of every
//! typed result, a data model of commands and replies, an independent
//! oracle of which reply fits which command, and drivers that feed replies
//! to a [`Connection`] in arbitrary pieces.
//!
//! Each test binary uses a different subset, hence `dead_code` is allowed.
#![allow(dead_code)]

use std::fmt;
use std::rc::Rc;

use beanstalk_proto::frame::ReplyWord;
use beanstalk_proto::stats::JobState;
use beanstalk_proto::{
    CommandError, Config, Connection, Error, Job, JobStats, ProtocolError, PutOptions, PutReceipt,
    ReleaseOutcome, Request, Response, ServerError, ServerStats, State, Token, Tube, TubeList,
    TubeStats, WriteBuf, cmd,
};
use bytes::{Buf, Bytes, BytesMut};

// ---------------------------------------------------------------------------
// Comparable results
// ---------------------------------------------------------------------------

/// A typed command result, rendered into one comparable value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum V {
    /// `PutReceipt` (not constructible outside the crate, hence this mirror).
    Receipt { id: u64, buried: bool },
    /// A `Tube` (use, list-tube-used).
    Tube(String),
    /// A `Job`, or `Some(Job)` from a peek.
    Job { id: u64, body: Vec<u8> },
    /// `None` from a peek.
    NoJob,
    /// `()`.
    Unit,
    /// `ReleaseOutcome`.
    Release(ReleaseOutcome),
    /// A count (watch, ignore, kick).
    Count(u64),
    /// `JobStats`, summarised.
    JobStats {
        id: u64,
        tube: String,
        state: JobState,
        pri: u32,
    },
    /// `TubeStats`, summarised.
    TubeStats {
        name: String,
        total_jobs: u64,
        ready: u64,
    },
    /// `ServerStats`, summarised.
    ServerStats {
        version: String,
        total_jobs: u64,
        pid: u64,
    },
    /// `TubeList`.
    TubeList(Vec<String>),
}

/// Renders a command's `Output` as a [`V`].
pub(crate) trait ToV {
    fn to_v(&self) -> V;
}

impl ToV for PutReceipt {
    fn to_v(&self) -> V {
        V::Receipt {
            id: self.id,
            buried: self.buried,
        }
    }
}

impl ToV for Tube {
    fn to_v(&self) -> V {
        V::Tube(self.as_str().to_owned())
    }
}

impl ToV for Job {
    fn to_v(&self) -> V {
        V::Job {
            id: self.id,
            body: self.body.to_vec(),
        }
    }
}

impl ToV for Option<Job> {
    fn to_v(&self) -> V {
        self.as_ref().map_or(V::NoJob, ToV::to_v)
    }
}

impl ToV for () {
    fn to_v(&self) -> V {
        V::Unit
    }
}

impl ToV for ReleaseOutcome {
    fn to_v(&self) -> V {
        V::Release(*self)
    }
}

impl ToV for u64 {
    fn to_v(&self) -> V {
        V::Count(*self)
    }
}

impl ToV for JobStats {
    fn to_v(&self) -> V {
        V::JobStats {
            id: self.id,
            tube: self.tube.to_string(),
            state: self.state,
            pri: self.pri,
        }
    }
}

impl ToV for TubeStats {
    fn to_v(&self) -> V {
        V::TubeStats {
            name: self.name.to_string(),
            total_jobs: self.total_jobs,
            ready: self.current_jobs_ready,
        }
    }
}

impl ToV for ServerStats {
    fn to_v(&self) -> V {
        V::ServerStats {
            version: self.version.to_string(),
            total_jobs: self.total_jobs,
            pid: self.pid,
        }
    }
}

impl ToV for TubeList {
    fn to_v(&self) -> V {
        V::TubeList(self.iter().map(str::to_owned).collect())
    }
}

/// A failure, comparable (`Error` holds `io::Error`, so it is not `PartialEq`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fail {
    NotFound,
    TimedOut,
    DeadlineSoon,
    NotIgnored,
    Draining,
    JobTooBig,
    Server(ServerError),
    /// `poll_response` failed: the connection is broken.
    Broken(ProtocolError),
    /// Anything else (never expected).
    Other(String),
}

/// What one command came to.
pub(crate) type Outcome = Result<V, Fail>;

/// Maps a typed error into a [`Fail`].
pub(crate) fn fail_of(error: Error) -> Fail {
    match error {
        Error::NotFound => Fail::NotFound,
        Error::TimedOut => Fail::TimedOut,
        Error::DeadlineSoon => Fail::DeadlineSoon,
        Error::NotIgnored => Fail::NotIgnored,
        Error::Draining => Fail::Draining,
        Error::JobTooBig => Fail::JobTooBig,
        Error::Server(e) => Fail::Server(e),
        other => Fail::Other(format!("from_response returned {other:?}")),
    }
}

/// Types `response` as the reply to `R` and renders it.
pub(crate) fn type_reply<R: Request>(response: Response) -> Outcome
where
    R::Output: ToV,
{
    R::from_response(response)
        .map(|output| output.to_v())
        .map_err(fail_of)
}

// ---------------------------------------------------------------------------
// Commands and replies as data
// ---------------------------------------------------------------------------

/// Every command except `quit` (which has no reply), as plain data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CmdSpec {
    Put {
        body: Vec<u8>,
        pri: u32,
        delay: u32,
        ttr: u32,
    },
    Use(String),
    Reserve,
    ReserveWithTimeout(u32),
    ReserveJob(u64),
    Delete(u64),
    Release(u64, u32, u32),
    Bury(u64, u32),
    Touch(u64),
    Watch(String),
    Ignore(String),
    Peek(u64),
    PeekReady,
    PeekDelayed,
    PeekBuried,
    Kick(u32),
    KickJob(u64),
    StatsJob(u64),
    StatsTube(String),
    Stats,
    ListTubes,
    ListTubeUsed,
    ListTubesWatched,
    PauseTube(String, u32),
}

/// Sends one typed command.
pub(crate) type SendFn = Rc<dyn Fn(&mut Connection, &mut WriteBuf) -> Result<Token, CommandError>>;

/// A command made typed: how to send it, how to type its reply.
#[derive(Clone)]
pub(crate) struct Typed {
    pub(crate) name: &'static str,
    pub(crate) send: SendFn,
    pub(crate) decode: fn(Response) -> Outcome,
}

impl fmt::Debug for Typed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Typed({})", self.name)
    }
}

/// Wraps a typed command value.
pub(crate) fn typed<R: Request + 'static>(request: R) -> Typed
where
    R::Output: ToV,
{
    Typed {
        name: R::KIND.name(),
        send: Rc::new(move |conn, out| conn.send(&request, out)),
        decode: type_reply::<R>,
    }
}

impl CmdSpec {
    /// All 24 commands with replies, with small sample arguments.
    pub(crate) fn samples() -> Vec<Self> {
        vec![
            Self::Put {
                body: b"hello".to_vec(),
                pri: 1024,
                delay: 0,
                ttr: 60,
            },
            Self::Use("default".into()),
            Self::Reserve,
            Self::ReserveWithTimeout(5),
            Self::ReserveJob(7),
            Self::Delete(7),
            Self::Release(7, 10, 0),
            Self::Bury(7, 10),
            Self::Touch(7),
            Self::Watch("default".into()),
            Self::Ignore("default".into()),
            Self::Peek(7),
            Self::PeekReady,
            Self::PeekDelayed,
            Self::PeekBuried,
            Self::Kick(10),
            Self::KickJob(7),
            Self::StatsJob(7),
            Self::StatsTube("default".into()),
            Self::Stats,
            Self::ListTubes,
            Self::ListTubeUsed,
            Self::ListTubesWatched,
            Self::PauseTube("default".into(), 10),
        ]
    }

    /// The wire name.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Put { .. } => "put",
            Self::Use(_) => "use",
            Self::Reserve => "reserve",
            Self::ReserveWithTimeout(_) => "reserve-with-timeout",
            Self::ReserveJob(_) => "reserve-job",
            Self::Delete(_) => "delete",
            Self::Release(..) => "release",
            Self::Bury(..) => "bury",
            Self::Touch(_) => "touch",
            Self::Watch(_) => "watch",
            Self::Ignore(_) => "ignore",
            Self::Peek(_) => "peek",
            Self::PeekReady => "peek-ready",
            Self::PeekDelayed => "peek-delayed",
            Self::PeekBuried => "peek-buried",
            Self::Kick(_) => "kick",
            Self::KickJob(_) => "kick-job",
            Self::StatsJob(_) => "stats-job",
            Self::StatsTube(_) => "stats-tube",
            Self::Stats => "stats",
            Self::ListTubes => "list-tubes",
            Self::ListTubeUsed => "list-tube-used",
            Self::ListTubesWatched => "list-tubes-watched",
            Self::PauseTube(..) => "pause-tube",
        }
    }

    /// The typed command. Panics on invalid arguments (specs are valid).
    pub(crate) fn typed(&self) -> Typed {
        match self.clone() {
            Self::Put {
                body,
                pri,
                delay,
                ttr,
            } => typed(
                cmd::Put::new(
                    body,
                    PutOptions::default().priority(pri).delay(delay).ttr(ttr),
                )
                .unwrap(),
            ),
            Self::Use(t) => typed(cmd::Use::new(t).unwrap()),
            Self::Reserve => typed(cmd::Reserve),
            Self::ReserveWithTimeout(s) => typed(cmd::ReserveWithTimeout::new(s).unwrap()),
            Self::ReserveJob(id) => typed(cmd::ReserveJob::new(id)),
            Self::Delete(id) => typed(cmd::Delete::new(id)),
            Self::Release(id, p, d) => typed(cmd::Release::new(id, p, d)),
            Self::Bury(id, p) => typed(cmd::Bury::new(id, p)),
            Self::Touch(id) => typed(cmd::Touch::new(id)),
            Self::Watch(t) => typed(cmd::Watch::new(t).unwrap()),
            Self::Ignore(t) => typed(cmd::Ignore::new(t).unwrap()),
            Self::Peek(id) => typed(cmd::Peek::new(id)),
            Self::PeekReady => typed(cmd::PeekReady),
            Self::PeekDelayed => typed(cmd::PeekDelayed),
            Self::PeekBuried => typed(cmd::PeekBuried),
            Self::Kick(n) => typed(cmd::Kick::new(n)),
            Self::KickJob(id) => typed(cmd::KickJob::new(id)),
            Self::StatsJob(id) => typed(cmd::StatsJob::new(id)),
            Self::StatsTube(t) => typed(cmd::StatsTube::new(t).unwrap()),
            Self::Stats => typed(cmd::Stats),
            Self::ListTubes => typed(cmd::ListTubes),
            Self::ListTubeUsed => typed(cmd::ListTubeUsed),
            Self::ListTubesWatched => typed(cmd::ListTubesWatched),
            Self::PauseTube(t, s) => typed(cmd::PauseTube::new(t, s).unwrap()),
        }
    }
}

/// A reply, as plain data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReplySpec {
    Inserted(u64),
    BuriedId(u64),
    Buried,
    Using(String),
    Reserved(u64, Vec<u8>),
    Found(u64, Vec<u8>),
    Ok(Vec<u8>),
    Watching(u64),
    KickedN(u64),
    Kicked,
    /// Any reply without arguments.
    Word(ReplyWord),
}

impl ReplySpec {
    /// One reply of every shape, with sample arguments.
    pub(crate) fn samples() -> Vec<Self> {
        use ReplyWord as W;
        let mut all = vec![
            Self::Inserted(3),
            Self::BuriedId(3),
            Self::Buried,
            Self::Using("default".into()),
            Self::Reserved(3, b"ab\r\nc".to_vec()),
            Self::Found(3, b"xyz".to_vec()),
            Self::Ok(b"---\nid: 3\nname: default\ntube: default\n- default\n".to_vec()),
            Self::Watching(2),
            Self::KickedN(4),
            Self::Kicked,
        ];
        all.extend(
            [
                W::ExpectedCrlf,
                W::JobTooBig,
                W::Draining,
                W::DeadlineSoon,
                W::TimedOut,
                W::Deleted,
                W::NotFound,
                W::Released,
                W::Touched,
                W::NotIgnored,
                W::Paused,
                W::OutOfMemory,
                W::InternalError,
                W::BadFormat,
                W::UnknownCommand,
            ]
            .map(Self::Word),
        );
        all
    }

    /// The reply's first word.
    pub(crate) fn word(&self) -> ReplyWord {
        match self {
            Self::Inserted(_) => ReplyWord::Inserted,
            Self::BuriedId(_) | Self::Buried => ReplyWord::Buried,
            Self::Using(_) => ReplyWord::Using,
            Self::Reserved(..) => ReplyWord::Reserved,
            Self::Found(..) => ReplyWord::Found,
            Self::Ok(_) => ReplyWord::Ok,
            Self::Watching(_) => ReplyWord::Watching,
            Self::KickedN(_) | Self::Kicked => ReplyWord::Kicked,
            Self::Word(w) => *w,
        }
    }

    /// The reply as the server sends it.
    pub(crate) fn bytes(&self) -> Vec<u8> {
        let with_body = |head: String, body: &[u8]| {
            let mut v = head.into_bytes();
            v.extend_from_slice(body);
            v.extend_from_slice(b"\r\n");
            v
        };
        match self {
            Self::Inserted(id) => format!("INSERTED {id}\r\n").into_bytes(),
            Self::BuriedId(id) => format!("BURIED {id}\r\n").into_bytes(),
            Self::Buried => b"BURIED\r\n".to_vec(),
            Self::Using(t) => format!("USING {t}\r\n").into_bytes(),
            Self::Reserved(id, b) => with_body(format!("RESERVED {id} {}\r\n", b.len()), b),
            Self::Found(id, b) => with_body(format!("FOUND {id} {}\r\n", b.len()), b),
            Self::Ok(b) => with_body(format!("OK {}\r\n", b.len()), b),
            Self::Watching(n) => format!("WATCHING {n}\r\n").into_bytes(),
            Self::KickedN(n) => format!("KICKED {n}\r\n").into_bytes(),
            Self::Kicked => b"KICKED\r\n".to_vec(),
            Self::Word(w) => format!("{}\r\n", w.as_str()).into_bytes(),
        }
    }
}

/// The oracle: what `reply` must give as the answer to `cmd`, written from
/// the protocol (doc/protocol.txt and PROTOCOL-NOTES.md), not from the
/// implementation.
pub(crate) fn oracle(cmd: &CmdSpec, reply: &ReplySpec) -> Outcome {
    use CmdSpec as C;
    use ReplySpec as R;
    use ReplyWord as W;
    let unexpected = || {
        Err(Fail::Broken(ProtocolError::UnexpectedReply {
            command: cmd.name(),
            reply: reply.word(),
        }))
    };
    let job = |id: &u64, body: &Vec<u8>| {
        Ok(V::Job {
            id: *id,
            body: body.clone(),
        })
    };
    // Replies any command may get.
    match reply {
        R::Word(W::OutOfMemory) => return Err(Fail::Server(ServerError::OutOfMemory)),
        R::Word(W::InternalError) => return Err(Fail::Server(ServerError::InternalError)),
        // The crate documents DRAINING as a possible answer to anything.
        R::Word(W::Draining) => return Err(Fail::Draining),
        R::Word(w @ (W::BadFormat | W::UnknownCommand)) => {
            return if matches!(cmd, C::Put { .. }) {
                // The server may be reading the job body as commands.
                Err(Fail::Broken(ProtocolError::Desync {
                    command: "put",
                    reply: *w,
                }))
            } else if *w == W::BadFormat {
                Err(Fail::Server(ServerError::BadFormat))
            } else {
                Err(Fail::Server(ServerError::UnknownCommand))
            };
        }
        R::Word(W::ExpectedCrlf) => {
            return Err(Fail::Broken(ProtocolError::Desync {
                command: cmd.name(),
                reply: W::ExpectedCrlf,
            }));
        }
        _ => {}
    }
    match (cmd, reply) {
        (C::Put { .. }, R::Inserted(id)) => Ok(V::Receipt {
            id: *id,
            buried: false,
        }),
        (C::Put { .. }, R::BuriedId(id)) => Ok(V::Receipt {
            id: *id,
            buried: true,
        }),
        (C::Put { .. }, R::Word(W::JobTooBig)) => Err(Fail::JobTooBig),
        (C::Use(asked), R::Using(got)) => {
            if asked == got {
                Ok(V::Tube(got.clone()))
            } else {
                Err(Fail::Broken(ProtocolError::TubeMismatch))
            }
        }
        (C::ListTubeUsed, R::Using(got)) => Ok(V::Tube(got.clone())),
        (C::Reserve | C::ReserveWithTimeout(_) | C::ReserveJob(_), R::Reserved(id, b)) => {
            job(id, b)
        }
        (C::Reserve | C::ReserveWithTimeout(_), R::Word(W::DeadlineSoon)) => {
            Err(Fail::DeadlineSoon)
        }
        (C::Reserve | C::ReserveWithTimeout(_), R::Word(W::TimedOut)) => Err(Fail::TimedOut),
        (C::Delete(_), R::Word(W::Deleted)) => Ok(V::Unit),
        (C::Release(..), R::Word(W::Released)) => Ok(V::Release(ReleaseOutcome::Released)),
        (C::Release(..), R::Buried) => Ok(V::Release(ReleaseOutcome::Buried)),
        (C::Bury(..), R::Buried) => Ok(V::Unit),
        (C::Touch(_), R::Word(W::Touched)) => Ok(V::Unit),
        (C::Watch(_) | C::Ignore(_), R::Watching(n)) => Ok(V::Count(*n)),
        (C::Ignore(_), R::Word(W::NotIgnored)) => Err(Fail::NotIgnored),
        (C::Peek(_) | C::PeekReady | C::PeekDelayed | C::PeekBuried, R::Found(id, b)) => job(id, b),
        (C::Peek(_) | C::PeekReady | C::PeekDelayed | C::PeekBuried, R::Word(W::NotFound)) => {
            Ok(V::NoJob)
        }
        (C::Kick(_), R::KickedN(n)) => Ok(V::Count(*n)),
        (C::KickJob(_), R::Kicked) => Ok(V::Unit),
        (C::StatsJob(_), R::Ok(b)) => Ok(JobStats::parse(Bytes::from(b.clone())).to_v()),
        (C::StatsTube(_), R::Ok(b)) => Ok(TubeStats::parse(Bytes::from(b.clone())).to_v()),
        (C::Stats, R::Ok(b)) => Ok(ServerStats::parse(Bytes::from(b.clone())).to_v()),
        (C::ListTubes | C::ListTubesWatched, R::Ok(b)) => {
            Ok(TubeList::parse(Bytes::from(b.clone())).to_v())
        }
        (C::PauseTube(..), R::Word(W::Paused)) => Ok(V::Unit),
        (
            C::ReserveJob(_)
            | C::Delete(_)
            | C::Release(..)
            | C::Bury(..)
            | C::Touch(_)
            | C::KickJob(_)
            | C::StatsJob(_)
            | C::StatsTube(_)
            | C::PauseTube(..),
            R::Word(W::NotFound),
        ) => Err(Fail::NotFound),
        _ => unexpected(),
    }
}

// ---------------------------------------------------------------------------
// Drivers
// ---------------------------------------------------------------------------

/// One command, the bytes of its reply, and the expected outcome.
#[derive(Clone, Debug)]
pub(crate) struct Step {
    pub(crate) label: String,
    pub(crate) typed: Typed,
    pub(crate) reply: Vec<u8>,
    pub(crate) expect: Outcome,
    pub(crate) config: Config,
}

impl Step {
    /// A step from a typed command.
    pub(crate) fn new(
        label: impl Into<String>,
        typed: Typed,
        reply: &[u8],
        expect: Outcome,
    ) -> Self {
        Self {
            label: label.into(),
            typed,
            reply: reply.to_vec(),
            expect,
            config: Config::default(),
        }
    }

    /// A step from the data model, expected outcome by the oracle.
    pub(crate) fn from_spec(cmd: &CmdSpec, reply: &ReplySpec) -> Self {
        let bytes = reply.bytes();
        Self::new(
            format!("{} <- {}", cmd.name(), show(&bytes)),
            cmd.typed(),
            &bytes,
            oracle(cmd, reply),
        )
    }

    /// Whether the expected outcome leaves the connection usable.
    pub(crate) fn keeps_connection(&self) -> bool {
        !matches!(self.expect, Err(Fail::Broken(_)))
    }
}

/// What feeding one reply to a fresh connection gave, including what the
/// connection could do afterwards.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Observed {
    pub(crate) outcome: Outcome,
    pub(crate) state: State,
    pub(crate) in_flight: usize,
    pub(crate) session: (String, Vec<String>),
    /// Unconsumed input after a reply that did not break the connection
    /// (`None` after a fatal error, which may come before all bytes).
    pub(crate) leftover: Option<usize>,
    /// A `delete 1` sent afterwards, answered `DELETED`.
    pub(crate) follow_up: Result<Outcome, CommandError>,
    /// `poll_response` once more on fresh valid input.
    pub(crate) poll_after: Result<bool, ProtocolError>,
}

/// Renders bytes for messages.
pub(crate) fn show(bytes: &[u8]) -> String {
    let text: String = bytes.escape_ascii().to_string();
    if text.len() > 80 {
        format!("{}...", &text[..80])
    } else {
        text
    }
}

/// The session as strings.
pub(crate) fn session_of(conn: &Connection) -> (String, Vec<String>) {
    let s = conn.session();
    (
        s.using().as_str().to_owned(),
        s.watching().iter().map(|t| t.as_str().to_owned()).collect(),
    )
}

/// Sends `step`'s command on a fresh connection, feeds its reply in
/// `pieces` (polling after each), then probes the connection.
pub(crate) fn run_pieces(step: &Step, pieces: &[&[u8]]) -> Observed {
    let mut conn = Connection::new(step.config);
    let mut out = WriteBuf::new();
    let token = (step.typed.send)(&mut conn, &mut out).expect("valid command");
    let mut src = BytesMut::new();
    let mut fed = 0;
    let mut outcome = None;
    for piece in pieces {
        src.extend_from_slice(piece);
        fed += piece.len();
        match conn.poll_response(&mut src) {
            Ok(None) => {}
            Ok(Some((got, response))) => {
                assert_eq!(got, token, "{}: token", step.label);
                assert_eq!(
                    fed,
                    step.reply.len(),
                    "{}: a reply came out before all its bytes were fed",
                    step.label
                );
                outcome = Some((step.typed.decode)(response));
                break;
            }
            Err(e) => {
                outcome = Some(Err(Fail::Broken(e)));
                break;
            }
        }
    }
    let outcome = outcome.unwrap_or_else(|| Err(Fail::Other("no reply after all bytes".into())));
    if outcome.is_ok() {
        assert_eq!(
            conn.poll_response(&mut src),
            Ok(None),
            "{}: nothing more",
            step.label
        );
    }
    let state = conn.state();
    let in_flight = conn.in_flight();
    let session = session_of(&conn);
    let leftover = (!matches!(outcome, Err(Fail::Broken(_)))).then_some(src.len());
    let follow_up = cmd_delete_follow_up(&mut conn, &mut out);
    let poll_after = conn
        .poll_response(&mut BytesMut::from(&b"DELETED\r\n"[..]))
        .map(|r| r.is_some());
    Observed {
        outcome,
        state,
        in_flight,
        session,
        leftover,
        follow_up,
        poll_after,
    }
}

fn cmd_delete_follow_up(
    conn: &mut Connection,
    out: &mut WriteBuf,
) -> Result<Outcome, CommandError> {
    let delete = cmd::Delete::new(1);
    conn.send(&delete, out)?;
    let mut src = BytesMut::from(&b"DELETED\r\n"[..]);
    Ok(match conn.poll_response(&mut src) {
        Ok(Some((_, r))) => type_reply::<cmd::Delete>(r),
        Ok(None) => Err(Fail::Other("follow-up incomplete".into())),
        Err(e) => Err(Fail::Broken(e)),
    })
}

/// Feeds `step` whole, one byte at a time, and split in two at every
/// index; asserts every way gives the same, expected result, and that the
/// connection is usable or broken as it should be.
pub(crate) fn check_every_split(step: &Step) {
    let reply = &step.reply[..];
    let whole = run_pieces(step, &[reply]);
    assert_eq!(whole.outcome, step.expect, "{}: outcome", step.label);
    if let Err(Fail::Broken(cause)) = &step.expect {
        assert_eq!(whole.state, State::Broken(*cause), "{}: state", step.label);
        assert_eq!(whole.in_flight, 0, "{}", step.label);
        assert_eq!(
            whole.follow_up,
            Err(CommandError::Broken(*cause)),
            "{}: send after a fatal error",
            step.label
        );
        assert_eq!(
            whole.poll_after,
            Err(*cause),
            "{}: poll after a fatal error",
            step.label
        );
    } else {
        assert_eq!(whole.state, State::Open, "{}: state", step.label);
        assert_eq!(whole.in_flight, 0, "{}", step.label);
        assert_eq!(
            whole.leftover,
            Some(0),
            "{}: whole reply consumed",
            step.label
        );
        assert_eq!(
            whole.follow_up,
            Ok(Ok(V::Unit)),
            "{}: connection usable afterwards",
            step.label
        );
        assert_eq!(
            whole.poll_after,
            Err(ProtocolError::Unsolicited(ReplyWord::Deleted))
        );
    }
    let bytes: Vec<&[u8]> = reply.chunks(1).collect();
    assert_eq!(
        run_pieces(step, &bytes),
        whole,
        "{}: fed one byte at a time",
        step.label
    );
    for i in 0..=reply.len() {
        let (a, b) = reply.split_at(i);
        assert_eq!(
            run_pieces(step, &[a, b]),
            whole,
            "{}: split at {i}",
            step.label
        );
    }
}

/// Decodes a whole pipeline of steps on one connection, feeding the
/// concatenated replies in chunks whose sizes come from `sizes` (cycled).
/// Returns each step's outcome in order (stopping at the first fatal
/// error) and the connection afterwards.
pub(crate) fn run_pipeline(
    steps: &[Step],
    config: Config,
    sizes: &[usize],
) -> (Vec<Outcome>, Connection) {
    let mut conn = Connection::new(config);
    let mut out = WriteBuf::new();
    let mut tokens = Vec::with_capacity(steps.len());
    let mut wire = Vec::new();
    for step in steps {
        tokens.push((step.typed.send)(&mut conn, &mut out).expect("valid command"));
        wire.extend_from_slice(&step.reply);
    }
    assert_eq!(conn.in_flight(), steps.len());
    for (i, t) in tokens.iter().enumerate() {
        assert_eq!(t.get(), i as u64, "tokens count up from 0");
    }
    let mut outcomes = Vec::with_capacity(steps.len());
    let mut src = BytesMut::new();
    let mut pos = 0;
    let mut size = sizes.iter().copied().cycle();
    'feed: while pos < wire.len() {
        let n = size.next().unwrap_or(1).clamp(1, wire.len() - pos);
        src.extend_from_slice(&wire[pos..pos + n]);
        pos += n;
        loop {
            match conn.poll_response(&mut src) {
                Ok(None) => break,
                Ok(Some((token, response))) => {
                    let i = outcomes.len();
                    assert_eq!(token, tokens[i], "replies come back in send order");
                    assert_eq!(conn.in_flight(), steps.len() - i - 1);
                    outcomes.push((steps[i].typed.decode)(response));
                }
                Err(e) => {
                    outcomes.push(Err(Fail::Broken(e)));
                    break 'feed;
                }
            }
        }
    }
    if outcomes.len() == steps.len() && !matches!(outcomes.last(), Some(Err(Fail::Broken(_)))) {
        assert!(src.is_empty(), "all input consumed");
        assert_eq!(conn.in_flight(), 0);
        assert!(conn.is_open());
    }
    (outcomes, conn)
}

/// Collects everything a `WriteBuf` holds, leaving it empty.
pub(crate) fn drain(out: &mut WriteBuf) -> Vec<u8> {
    let mut v = Vec::with_capacity(out.remaining());
    while out.has_remaining() {
        let chunk = out.chunk();
        assert!(!chunk.is_empty(), "chunk() is empty while bytes remain");
        v.extend_from_slice(chunk);
        let n = chunk.len();
        out.advance(n);
    }
    v
}

/// Encodes one request on a fresh connection and returns the bytes.
pub(crate) fn encode<R: Request>(request: &R) -> Vec<u8> {
    let mut conn = Connection::default();
    let mut out = WriteBuf::new();
    conn.send(request, &mut out).expect("valid command");
    drain(&mut out)
}

/// The fixtures directory copied from the server captures.
pub(crate) fn fixture_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/replies")
}

/// Reads `replies/<version>/<file>`.
pub(crate) fn fixture(version: &str, file: &str) -> Vec<u8> {
    let path = fixture_dir().join(version).join(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The two captured server versions.
pub(crate) const VERSIONS: [&str; 2] = ["1.12", "1.13plus"];

/// Decodes one whole reply to `R` through a fresh connection.
pub(crate) fn decode_one<R: Request>(request: &R, reply: &[u8]) -> Result<R::Output, Error> {
    let mut conn = Connection::default();
    let mut out = WriteBuf::new();
    conn.send(request, &mut out)?;
    let mut src = BytesMut::from(reply);
    let (_, response) = conn
        .poll_response(&mut src)?
        .expect("a whole reply in the input");
    assert!(src.is_empty(), "the reply was consumed exactly");
    R::from_response(response)
}

// ---------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------

use proptest::prelude::*;

/// Body bytes, rich in CR, LF and NUL.
pub(crate) fn body_strategy(max: usize) -> BoxedStrategy<Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            Just(b'\r'),
            Just(b'\n'),
            Just(0u8),
            Just(b' '),
            any::<u8>(),
            b'a'..=b'z',
        ],
        0..max,
    )
    .boxed()
}

/// Valid tube names, short and long.
pub(crate) fn tube_strategy() -> BoxedStrategy<String> {
    prop_oneof![
        4 => "[A-Za-z0-9+/;.$_()][A-Za-z0-9+/;.$_()-]{0,12}",
        1 => "[a-z][a-z-]{190,199}",
        1 => Just("default".to_owned()),
    ]
    .boxed()
}

/// Replies any command may get without breaking the connection.
fn universal(is_put: bool) -> BoxedStrategy<ReplySpec> {
    use ReplyWord as W;
    let mut words = vec![W::OutOfMemory, W::InternalError, W::Draining];
    if !is_put {
        words.extend([W::BadFormat, W::UnknownCommand]);
    }
    prop::sample::select(words)
        .prop_map(ReplySpec::Word)
        .boxed()
}

/// A command and a well-formed reply that fits it (never fatal).
pub(crate) fn pair_strategy() -> BoxedStrategy<(CmdSpec, ReplySpec)> {
    use ReplySpec as R;
    use ReplyWord as W;
    let body = || body_strategy(40);
    let word = |w: W| Just(R::Word(w));
    let with = |cmd: BoxedStrategy<CmdSpec>, reply: BoxedStrategy<ReplySpec>| (cmd, reply).boxed();
    let not_found_or =
        |ok: W| prop_oneof![4 => word(ok), 2 => word(W::NotFound), 1 => universal(false)].boxed();
    let job_reply = || (any::<u64>(), body()).prop_map(|(id, b)| R::Reserved(id, b));
    let found = || {
        prop_oneof![
            3 => (any::<u64>(), body()).prop_map(|(id, b)| R::Found(id, b)),
            2 => word(W::NotFound),
            1 => universal(false),
        ]
        .boxed()
    };
    let yaml = || {
        prop_oneof![
            body(),
            Just(b"---\nid: 3\nname: \"t\"\nversion: 1.12\n- default\n".to_vec()),
        ]
        .prop_map(R::Ok)
    };
    let id = || any::<u64>();
    let strategies: Vec<BoxedStrategy<(CmdSpec, ReplySpec)>> = vec![
        with(
            (body_strategy(64), any::<u32>(), any::<u32>(), any::<u32>())
                .prop_map(|(body, pri, delay, ttr)| CmdSpec::Put {
                    body,
                    pri,
                    delay,
                    ttr,
                })
                .boxed(),
            prop_oneof![
                4 => any::<u64>().prop_map(R::Inserted),
                1 => any::<u64>().prop_map(R::BuriedId),
                1 => word(W::JobTooBig),
                1 => universal(true),
            ]
            .boxed(),
        ),
        tube_strategy()
            .prop_flat_map(|t| {
                (
                    Just(CmdSpec::Use(t.clone())),
                    prop_oneof![4 => Just(R::Using(t)), 1 => universal(false)],
                )
            })
            .boxed(),
        with(
            prop_oneof![
                Just(CmdSpec::Reserve),
                (0..=i32::MAX as u32).prop_map(CmdSpec::ReserveWithTimeout),
            ]
            .boxed(),
            prop_oneof![
                4 => job_reply(),
                1 => word(W::DeadlineSoon),
                1 => word(W::TimedOut),
                1 => universal(false),
            ]
            .boxed(),
        ),
        with(
            id().prop_map(CmdSpec::ReserveJob).boxed(),
            prop_oneof![3 => job_reply(), 1 => word(W::NotFound), 1 => universal(false)].boxed(),
        ),
        with(
            id().prop_map(CmdSpec::Delete).boxed(),
            not_found_or(W::Deleted),
        ),
        with(
            (id(), any::<u32>(), any::<u32>())
                .prop_map(|(i, p, d)| CmdSpec::Release(i, p, d))
                .boxed(),
            prop_oneof![
                3 => word(W::Released),
                1 => Just(R::Buried),
                1 => word(W::NotFound),
                1 => universal(false),
            ]
            .boxed(),
        ),
        with(
            (id(), any::<u32>())
                .prop_map(|(i, p)| CmdSpec::Bury(i, p))
                .boxed(),
            prop_oneof![3 => Just(R::Buried), 1 => word(W::NotFound), 1 => universal(false)]
                .boxed(),
        ),
        with(
            id().prop_map(CmdSpec::Touch).boxed(),
            not_found_or(W::Touched),
        ),
        with(
            tube_strategy().prop_map(CmdSpec::Watch).boxed(),
            prop_oneof![4 => any::<u64>().prop_map(R::Watching), 1 => universal(false)].boxed(),
        ),
        with(
            tube_strategy().prop_map(CmdSpec::Ignore).boxed(),
            prop_oneof![
                3 => any::<u64>().prop_map(R::Watching),
                1 => word(W::NotIgnored),
                1 => universal(false),
            ]
            .boxed(),
        ),
        with(
            prop_oneof![
                id().prop_map(CmdSpec::Peek),
                Just(CmdSpec::PeekReady),
                Just(CmdSpec::PeekDelayed),
                Just(CmdSpec::PeekBuried),
            ]
            .boxed(),
            found(),
        ),
        with(
            any::<u32>().prop_map(CmdSpec::Kick).boxed(),
            prop_oneof![4 => any::<u64>().prop_map(R::KickedN), 1 => universal(false)].boxed(),
        ),
        with(
            id().prop_map(CmdSpec::KickJob).boxed(),
            prop_oneof![3 => Just(R::Kicked), 1 => word(W::NotFound), 1 => universal(false)]
                .boxed(),
        ),
        with(
            prop_oneof![
                id().prop_map(CmdSpec::StatsJob),
                tube_strategy().prop_map(CmdSpec::StatsTube),
            ]
            .boxed(),
            prop_oneof![3 => yaml(), 1 => word(W::NotFound), 1 => universal(false)].boxed(),
        ),
        with(
            prop::sample::select(vec![
                CmdSpec::Stats,
                CmdSpec::ListTubes,
                CmdSpec::ListTubesWatched,
            ])
            .boxed(),
            prop_oneof![4 => yaml(), 1 => universal(false)].boxed(),
        ),
        with(
            Just(CmdSpec::ListTubeUsed).boxed(),
            prop_oneof![4 => tube_strategy().prop_map(R::Using), 1 => universal(false)].boxed(),
        ),
        with(
            (tube_strategy(), any::<u32>())
                .prop_map(|(t, s)| CmdSpec::PauseTube(t, s))
                .boxed(),
            not_found_or(W::Paused),
        ),
    ];
    prop::strategy::Union::new(strategies).boxed()
}

/// The session a sequence of confirmed outcomes leads to.
pub(crate) fn model_session(pairs: &[(CmdSpec, Outcome)]) -> (String, Vec<String>) {
    let mut using = "default".to_owned();
    let mut watching = vec!["default".to_owned()];
    for (cmd, outcome) in pairs {
        match (cmd, outcome) {
            (CmdSpec::Use(t), Ok(_)) => using = t.clone(),
            (CmdSpec::Watch(t), Ok(_)) if !watching.contains(t) => watching.push(t.clone()),
            (CmdSpec::Ignore(t), Ok(_)) => watching.retain(|w| w != t),
            _ => {}
        }
    }
    (using, watching)
}
