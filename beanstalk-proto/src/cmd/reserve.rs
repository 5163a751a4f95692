//! Taking jobs: `reserve`, `reserve-with-timeout`, `reserve-job`.
//!
//! While a `reserve` waits, the server reads nothing else from that
//! connection, so everything pipelined behind it waits too.

use core::time::Duration;

use crate::cmd::{ReplyTimeout, encode_numbers, request};
use crate::error::CommandError;
use crate::response::{Job, JobId};

/// `reserve\r\n`: waits, without limit, for a job from a watched tube.
///
/// Replies: `RESERVED <id> <bytes>` and the body, or `DEADLINE_SOON` when a
/// job this connection holds is within a second of its time-to-run.
///
/// # Wire format
/// ```
/// # use beanstalk_proto::{cmd::Reserve, Connection, WriteBuf};
/// # use bytes::Buf;
/// let mut out = WriteBuf::new();
/// Connection::default().send(&Reserve, &mut out)?;
/// assert_eq!(out.chunk(), b"reserve\r\n");
/// # Ok::<(), beanstalk_proto::CommandError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reserve;

request!(Reserve => Reserve -> Job,
    encode(|_this, dst| encode_numbers(dst, "reserve", [])),
    reply(R::Job(job) => job),
    fn reply_timeout(&self) -> ReplyTimeout {
        ReplyTimeout::Indefinite
    }
);

/// `reserve-with-timeout <seconds>\r\n`: like [`Reserve`], but gives up
/// after `seconds` with `TIMED_OUT`. 0 answers at once.
///
/// # Wire format
/// ```
/// # use beanstalk_proto::{cmd::ReserveWithTimeout, Connection, WriteBuf};
/// # use bytes::Buf;
/// let mut out = WriteBuf::new();
/// Connection::default().send(&ReserveWithTimeout::new(0)?, &mut out)?;
/// assert_eq!(out.chunk(), b"reserve-with-timeout 0\r\n");
/// # Ok::<(), beanstalk_proto::CommandError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReserveWithTimeout {
    seconds: u32,
}

impl ReserveWithTimeout {
    /// The largest timeout beanstalkd 1.12 reads correctly; it misreads
    /// larger values as "forever" or as 0.
    pub const MAX_SECONDS: u32 = i32::MAX as u32;

    /// A reserve that waits at most `seconds`.
    pub fn new(seconds: u32) -> Result<Self, CommandError> {
        if seconds > Self::MAX_SECONDS {
            return Err(CommandError::TimeoutTooLarge { seconds });
        }
        Ok(Self { seconds })
    }

    /// The server-side timeout in seconds.
    pub fn seconds(&self) -> u32 {
        self.seconds
    }
}

request!(ReserveWithTimeout => ReserveWithTimeout -> Job,
    encode(|this, dst| encode_numbers(dst, "reserve-with-timeout", [this.seconds.into()])),
    reply(R::Job(job) => job),
    fn reply_timeout(&self) -> ReplyTimeout {
        ReplyTimeout::ServerWait(Duration::from_secs(self.seconds.into()))
    }
);

/// `reserve-job <id>\r\n` (beanstalkd 1.12+): reserves a specific job
/// that is ready, delayed or buried. Replies `RESERVED`, or `NOT_FOUND`
/// when there is no such job or it is already reserved (by any
/// connection, this one included); servers before 1.12 answer
/// `UNKNOWN_COMMAND`.
///
/// # Wire format
/// ```
/// # use beanstalk_proto::{cmd::ReserveJob, Connection, WriteBuf};
/// # use bytes::Buf;
/// let mut out = WriteBuf::new();
/// Connection::default().send(&ReserveJob::new(42), &mut out)?;
/// assert_eq!(out.chunk(), b"reserve-job 42\r\n");
/// # Ok::<(), beanstalk_proto::CommandError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReserveJob {
    id: JobId,
}

impl ReserveJob {
    /// Reserves job `id`.
    pub const fn new(id: JobId) -> Self {
        Self { id }
    }
}

request!(ReserveJob => ReserveJob -> Job,
    encode(|this, dst| encode_numbers(dst, "reserve-job", [this.id])),
    reply(R::Job(job) => job),
    fn job_id(&self) -> Option<JobId> {
        Some(self.id)
    }
);
