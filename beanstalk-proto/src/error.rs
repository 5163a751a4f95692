//! Every way a command can fail, split by who is to blame.
//!
//! | type | whose fault | what it means for the connection |
//! |---|---|---|
//! | [`CommandError`] | the caller's | nothing was sent; the connection is unchanged |
//! | [`Error::NotFound`] and the other outcomes | nobody's | a normal answer; the connection is fine |
//! | [`ServerError`] | the server's | a valid reply; the connection is fine |
//! | [`ProtocolError`] | the peer's (or the network's) | the stream can no longer be trusted; the connection is broken for good |

use alloc::boxed::Box;
use alloc::string::String;
use core::fmt;
use core::time::Duration;

use crate::frame::ReplyWord;

/// The caller asked for something the protocol cannot carry.
///
/// Returned before anything reaches the wire: the connection's state is
/// unchanged and it can be used again at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// A tube name must have at least one byte.
    #[error("tube name is empty")]
    EmptyTubeName,
    /// A tube name is longer than the 200 bytes the server accepts.
    #[error("tube name is {len} bytes long; beanstalkd accepts at most 200")]
    TubeNameTooLong {
        /// The length of the rejected name.
        len: usize,
    },
    /// A tube name may not start with `-`.
    #[error("tube name may not begin with '-'")]
    TubeNameLeadingHyphen,
    /// A tube name holds a byte outside `A-Z a-z 0-9 - + / ; . $ _ ( )`.
    #[error(
        "tube name has byte {byte:#04x} at index {index}; only A-Z a-z 0-9 - + / ; . $ _ ( ) are allowed"
    )]
    TubeNameInvalidByte {
        /// The offending byte.
        byte: u8,
        /// Its position in the name.
        index: usize,
    },
    /// A job body is larger than the connection's configured maximum.
    #[error("job body is {len} bytes; this connection's limit is {max} (see Config::max_job_size)")]
    JobTooBig {
        /// The length of the rejected body.
        len: usize,
        /// The limit in force.
        max: u32,
    },
    /// A `reserve-with-timeout` timeout above `i32::MAX` seconds, which
    /// beanstalkd 1.12 silently misreads (as "forever" or as 0).
    #[error(
        "reserve timeout of {seconds} s is above 2147483647 s, the largest beanstalkd reads correctly"
    )]
    TimeoutTooLarge {
        /// The rejected timeout in seconds.
        seconds: u32,
    },
    /// A timeout of zero: no reply can ever meet it, so the command could
    /// only be written and then given up with its outcome unknown. To poll
    /// for a job use `reserve_with_timeout(0)`; for no limit use
    /// `Duration::MAX`. Non-zero timeouts below
    /// [`MIN_TIMEOUT`](crate::options::MIN_TIMEOUT) are raised to it.
    #[error(
        "the {which} timeout is zero, which nothing can meet; use reserve_with_timeout(0) to poll, or Duration::MAX for no limit"
    )]
    ZeroTimeout {
        /// Which timeout: `read`, `write`, `connect` or `call` (a one-call
        /// `with_timeout`).
        which: &'static str,
    },
    /// A command that can hold the connection's replies for a long time
    /// (`reserve`, or `reserve-with-timeout` above 0) was sent through a
    /// handle shared by several tasks. beanstalkd answers nothing else on a
    /// connection while a reserve waits, so it would stall every other task;
    /// reserve on a connection of its own.
    #[error(
        "a waiting reserve would stall every task sharing this connection; reserve on a dedicated connection"
    )]
    WouldBlockShared,
    /// A hand-made pipeline's `recv` with no command in flight: every
    /// reply was already handed out (or nothing was sent). The connection
    /// is unchanged.
    #[error("no command is waiting for a reply")]
    NothingInFlight,
    /// The connection was closed (after `quit`, or the server closed it
    /// cleanly); open a new one.
    #[error("the connection is closed; open a new one")]
    Closed,
    /// An earlier failure left the stream in an unknown state; open a new
    /// connection. The first failure is attached.
    #[error("the connection is broken ({0}); open a new one")]
    Broken(ProtocolError),
}

/// The peer sent something that cannot be trusted, or the stream ended or
/// was abandoned part-way.
///
/// After any of these the connection is broken for good: every later call
/// fails with [`CommandError::Broken`], so a late reply can never be taken
/// as the answer to a later command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// No CRLF within the longest line a server can send.
    #[error("reply line longer than {max} bytes without CRLF")]
    LineTooLong {
        /// The longest valid reply line, CRLF included.
        max: usize,
    },
    /// A bare LF, or a CR not followed by LF, inside a reply line.
    #[error("reply line contains a bare CR or LF; only CRLF ends a line")]
    BadLineEnding,
    /// The first word of a reply line is not a beanstalkd reply.
    #[error("unknown reply word")]
    UnknownReply,
    /// A known reply word with arguments that do not parse.
    #[error("malformed {0} reply")]
    MalformedReply(ReplyWord),
    /// A reply announced a body larger than the configured cap.
    #[error("reply announces a {len}-byte body; the cap is {max}")]
    BodyTooLarge {
        /// The announced length.
        len: u64,
        /// The cap in force (see [`crate::Config`]).
        max: usize,
    },
    /// A body was not followed by CRLF.
    #[error("reply body is not followed by CRLF")]
    BodyNotTerminated,
    /// A reply arrived while no command was waiting for one.
    #[error("the server sent {0} while no command was in flight")]
    Unsolicited(ReplyWord),
    /// A reply that the command at the head of the queue cannot receive.
    #[error("`{command}` cannot be answered with {reply}")]
    UnexpectedReply {
        /// The command that was waiting.
        command: &'static str,
        /// What came instead.
        reply: ReplyWord,
    },
    /// A reply that says the server and client no longer agree on where
    /// commands begin: BAD_FORMAT, UNKNOWN_COMMAND or EXPECTED_CRLF after a
    /// `put` means the server may be reading the job body as commands.
    #[error("{reply} after `{command}`: the server may have read the job body as commands")]
    Desync {
        /// The command that was answered.
        command: &'static str,
        /// The reply.
        reply: ReplyWord,
    },
    /// `USING` named another tube than the one asked for.
    #[error("the server answered `use` with another tube's name")]
    TubeMismatch,
    /// The stream ended while a reply was expected or partly received.
    #[error("connection closed by the server with {in_flight} command(s) unanswered")]
    UnexpectedEof {
        /// How many commands were still waiting.
        in_flight: usize,
    },
    /// The driver gave up waiting for replies (a timeout or a cancelled
    /// call); whether the commands in flight took effect is unknown.
    #[error("replies were abandoned (timeout or cancellation); their outcome is unknown")]
    Abandoned,
}

/// An error reply the server may send to any command. The stream is still
/// in sync, so the connection stays usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// `OUT_OF_MEMORY`: try again later.
    #[error("server is out of memory (OUT_OF_MEMORY); try again later")]
    OutOfMemory,
    /// `INTERNAL_ERROR`: a server bug. After `delete` the job may already be
    /// gone from memory but come back after a restart.
    #[error("server internal error (INTERNAL_ERROR)")]
    InternalError,
    /// `BAD_FORMAT`: the server could not parse the command. The client
    /// validates every argument, so this means a server of another dialect.
    #[error("server rejected the command line (BAD_FORMAT)")]
    BadFormat,
    /// `UNKNOWN_COMMAND`: e.g. `reserve-job` sent to a server older than 1.12.
    #[error("server does not know the command (UNKNOWN_COMMAND)")]
    UnknownCommand,
}

/// The one error type every client call returns.
///
/// [`Error::outcome_unknown`] tells whether a command may have taken effect
/// although no answer arrived (a `put` whose job may exist).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The caller's mistake; nothing was sent.
    #[error(transparent)]
    Command(#[from] CommandError),
    /// The stream broke; the connection is unusable from now on.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// An error reply; the connection is still usable.
    #[error(transparent)]
    Server(#[from] ServerError),
    /// `NOT_FOUND`: no such job (or not reserved by this connection), or no
    /// such tube, or nothing to peek.
    #[error("not found")]
    NotFound,
    /// `TIMED_OUT`: `reserve-with-timeout` found no job in time.
    #[error("no job became ready before the reserve timeout")]
    TimedOut,
    /// `DEADLINE_SOON`: a job this connection holds is about to time out;
    /// delete, release or touch it.
    #[error("a reserved job's time-to-run is about to run out (DEADLINE_SOON)")]
    DeadlineSoon,
    /// `NOT_IGNORED`: the last watched tube cannot be ignored.
    #[error("cannot ignore the only watched tube")]
    NotIgnored,
    /// `DRAINING`: the server accepts no new jobs; try another server or
    /// later. Reserving and deleting still work.
    #[error("server is draining and accepts no new jobs")]
    Draining,
    /// `JOB_TOO_BIG`: the body exceeds the server's `max-job-size`. The
    /// server discarded it and the connection is in sync.
    #[error("job body exceeds the server's max-job-size")]
    JobTooBig,
    /// `RESERVED` or `FOUND` with a job whose body is larger than this
    /// client's `max_job_size` ([`crate::Config`]). The body was read and
    /// dropped, so the connection is in sync. After a reserve **the job is
    /// reserved by this connection**: bury, release or delete it by `id`
    /// (workers bury it), or raise the limit.
    #[error("job {id} has a {len}-byte body; this client's cap is {max}")]
    JobTooLarge {
        /// The job.
        id: crate::response::JobId,
        /// The body's length, as the server announced it.
        len: u64,
        /// The cap in force.
        max: usize,
    },
    /// The server address could not be parsed; nothing was attempted.
    #[error(transparent)]
    Address(#[from] crate::endpoint::AddressError),
    /// The socket failed; the connection is unusable.
    #[cfg(feature = "std")]
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The socket made no progress within the command's timeout (no reply,
    /// or a write that did not drain). The connection is closed; the command
    /// may or may not have taken effect.
    #[error("timed out after {0:?}; the command may or may not have taken effect")]
    Timeout(Duration),
    /// `delete`, `release`, `bury` or `touch` of a job that was reserved on
    /// a connection which has since been lost. The server released the job
    /// when that connection closed (another worker may hold it now), so
    /// nothing was sent: acting on it from the new connection could delete
    /// a job someone else is working on. See [`crate::lease`].
    #[error(
        "job {job_id} was reserved on a connection that has since been lost; the server released it, so nothing was sent"
    )]
    LeaseLost {
        /// The job.
        job_id: crate::response::JobId,
    },
    /// The connection broke after the command was sent and before its reply
    /// arrived, and the command is not one that is safe to send again: it
    /// may or may not have taken effect. For a `put`, **the job may exist**.
    /// Returned by reconnecting clients, which have replaced the connection
    /// (`cause` is how the old one failed) and did not re-send the command.
    #[error("{}", unconfirmed_message(*.command, .cause))]
    Unconfirmed {
        /// The command whose reply was lost.
        command: crate::cmd::CommandKind,
        /// How the connection failed.
        #[source]
        cause: Box<Self>,
    },
}

/// The text of [`Error::Unconfirmed`].
fn unconfirmed_message(command: crate::cmd::CommandKind, cause: &Error) -> String {
    let effect = match command {
        crate::cmd::CommandKind::Put => "the job may or may not exist; a retry may duplicate it",
        _ => "it may or may not have taken effect",
    };
    alloc::format!(
        "the connection broke before the reply to `{}` arrived ({cause}): {effect}",
        command.name()
    )
}

impl Error {
    /// Whether the command may have reached the server and taken effect
    /// although no answer was received: true for every failure of the
    /// connection itself (I/O, timeout, broken stream). A `put` that fails
    /// this way may have created its job, so retrying it may duplicate it.
    ///
    /// ```
    /// use beanstalk_proto::{Error, ProtocolError};
    /// assert!(Error::Protocol(ProtocolError::UnexpectedEof { in_flight: 1 }).outcome_unknown());
    /// assert!(!Error::NotFound.outcome_unknown());
    /// ```
    pub fn outcome_unknown(&self) -> bool {
        match self {
            Self::Protocol(_) | Self::Timeout(_) | Self::Unconfirmed { .. } => true,
            #[cfg(feature = "std")]
            Self::Io(_) => true,
            _ => false,
        }
    }

    /// Whether the connection can no longer be used and must be replaced.
    pub fn is_connection_error(&self) -> bool {
        matches!(
            self,
            Self::Protocol(_)
                | Self::Timeout(_)
                | Self::Unconfirmed { .. }
                | Self::Command(CommandError::Closed | CommandError::Broken(_))
        ) || self.is_io()
    }

    fn is_io(&self) -> bool {
        #[cfg(feature = "std")]
        if let Self::Io(_) = self {
            return true;
        }
        false
    }
}

impl fmt::Display for ReplyWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
