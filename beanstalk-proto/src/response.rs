//! Replies as the connection hands them out: owned, with bodies shared
//! (not copied) from the read buffer.

use bytes::Bytes;

use crate::cmd::CommandKind;
use crate::error::{CommandError, Error, ProtocolError, ServerError};
use crate::frame::ReplyWord;
use crate::tube::Tube;

/// A job's id. Ids start at 1 and are unique within one server run; without
/// a binlog (`-b`) a restarted server hands the same ids out again.
pub type JobId = u64;

/// A job as returned by `reserve` and the `peek` commands.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Job {
    /// The job's id.
    pub id: JobId,
    /// The body, byte for byte as it was put.
    pub body: Bytes,
}

impl Job {
    /// A job with the given id and body.
    pub fn new(id: JobId, body: impl Into<Bytes>) -> Self {
        Self {
            id,
            body: body.into(),
        }
    }
}

/// A reply that [`crate::Connection`] has matched to the command it
/// answers. Each command's [`crate::Request::from_response`] turns it into
/// that command's typed result.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Response {
    /// `INSERTED <id>`
    Inserted(JobId),
    /// `BURIED <id>` after `put`, `BURIED` after `bury`/`release`.
    Buried(Option<JobId>),
    /// `USING <tube>`
    Using(Tube),
    /// `RESERVED` or `FOUND`, with the job.
    Job(Job),
    /// `OK <n>` with its YAML body.
    Yaml(Bytes),
    /// `WATCHING <count>`
    Watching(u64),
    /// `KICKED <count>` after `kick`, `KICKED` after `kick-job`.
    Kicked(Option<u64>),
    /// Any reply without arguments or body.
    Word(ReplyWord),
    /// Not a server reply: the local completion of `quit`, which has none.
    Closing,
    /// `RESERVED` or `FOUND` with a body past the client's cap, which was
    /// read and dropped; see [`Error::JobTooLarge`].
    JobTooLarge {
        /// The job.
        id: JobId,
        /// The body's length.
        len: u64,
        /// The cap in force.
        max: usize,
    },
}

impl Response {
    /// Turns a reply that is not the command's success into its error.
    ///
    /// The connection has already checked that the reply fits the command,
    /// so a success reply arriving here means a `Request` implementation
    /// and its [`CommandKind`] disagree; it is reported, not panicked on.
    pub fn into_error(self, command: CommandKind) -> Error {
        let word = match self {
            Self::Word(word) => word,
            Self::Closing => return CommandError::Closed.into(),
            Self::JobTooLarge { id, len, max } => return Error::JobTooLarge { id, len, max },
            other => match other.word() {
                Some(reply) => {
                    return ProtocolError::UnexpectedReply {
                        command: command.name(),
                        reply,
                    }
                    .into();
                }
                None => return CommandError::Closed.into(),
            },
        };
        match word {
            ReplyWord::NotFound => Error::NotFound,
            ReplyWord::TimedOut => Error::TimedOut,
            ReplyWord::DeadlineSoon => Error::DeadlineSoon,
            ReplyWord::NotIgnored => Error::NotIgnored,
            ReplyWord::Draining => Error::Draining,
            ReplyWord::JobTooBig => Error::JobTooBig,
            ReplyWord::OutOfMemory => ServerError::OutOfMemory.into(),
            ReplyWord::InternalError => ServerError::InternalError.into(),
            ReplyWord::BadFormat => ServerError::BadFormat.into(),
            ReplyWord::UnknownCommand => ServerError::UnknownCommand.into(),
            reply => ProtocolError::UnexpectedReply {
                command: command.name(),
                reply,
            }
            .into(),
        }
    }

    /// The reply's first word; `None` for [`Response::Closing`].
    pub fn word(&self) -> Option<ReplyWord> {
        Some(match self {
            Self::Inserted(_) => ReplyWord::Inserted,
            Self::Buried(_) => ReplyWord::Buried,
            Self::Using(_) => ReplyWord::Using,
            // The connection does not keep which of the two it was; both carry a job.
            Self::Job(_) | Self::JobTooLarge { .. } => ReplyWord::Reserved,
            Self::Yaml(_) => ReplyWord::Ok,
            Self::Watching(_) => ReplyWord::Watching,
            Self::Kicked(_) => ReplyWord::Kicked,
            Self::Word(word) => *word,
            Self::Closing => return None,
        })
    }
}
