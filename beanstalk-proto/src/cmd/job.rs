//! What a worker does with jobs: `delete`, `release`, `bury`, `touch`,
//! `kick`, `kick-job`.
//!
//! `release`, `bury` and `touch` act only on a job this connection has
//! reserved; another connection gets `NOT_FOUND`. So does anyone after the
//! reserving connection closed, because the server then puts the job back.

use crate::cmd::{encode_numbers, request};
use crate::response::JobId;

/// `delete <id>\r\n`: removes a job this connection reserved, or a buried,
/// delayed or ready job. Replies `DELETED` or `NOT_FOUND`.
///
/// # Wire format
/// ```
/// # use beanstalk_proto::{cmd::Delete, Connection, WriteBuf};
/// # use bytes::Buf;
/// let mut out = WriteBuf::new();
/// Connection::default().send(&Delete::new(42), &mut out)?;
/// assert_eq!(out.chunk(), b"delete 42\r\n");
/// # Ok::<(), beanstalk_proto::CommandError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delete {
    id: JobId,
}

impl Delete {
    /// Deletes job `id`.
    pub const fn new(id: JobId) -> Self {
        Self { id }
    }
}

request!(Delete => Delete -> (),
    encode(|this, dst| encode_numbers(dst, "delete", [this.id])),
    reply(R::Word(crate::frame::ReplyWord::Deleted) => ()),
    fn job_id(&self) -> Option<JobId> {
        Some(self.id)
    }
);

/// What `release` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReleaseOutcome {
    /// `RELEASED`: the job is ready (or delayed) again.
    Released,
    /// `BURIED`: the server ran out of memory and buried the job instead.
    Buried,
}

/// `release <id> <pri> <delay>\r\n`: gives a reserved job back, with a new
/// priority and a delay in seconds. Replies `RELEASED`, `BURIED` or
/// `NOT_FOUND`.
///
/// # Wire format
/// ```
/// # use beanstalk_proto::{cmd::Release, Connection, WriteBuf};
/// # use bytes::Buf;
/// let mut out = WriteBuf::new();
/// Connection::default().send(&Release::new(42, 1024, 10), &mut out)?;
/// assert_eq!(out.chunk(), b"release 42 1024 10\r\n");
/// # Ok::<(), beanstalk_proto::CommandError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Release {
    id: JobId,
    priority: u32,
    delay: u32,
}

impl Release {
    /// Releases job `id` with `priority`, ready again after `delay` seconds.
    pub const fn new(id: JobId, priority: u32, delay: u32) -> Self {
        Self {
            id,
            priority,
            delay,
        }
    }
}

request!(Release => Release -> ReleaseOutcome,
    encode(|this, dst| encode_numbers(
        dst,
        "release",
        [this.id, this.priority.into(), this.delay.into()],
    )),
    reply(reply @ (R::Word(crate::frame::ReplyWord::Released) | R::Buried(None)) => {
        if matches!(reply, R::Buried(_)) {
            ReleaseOutcome::Buried
        } else {
            ReleaseOutcome::Released
        }
    }),
    fn job_id(&self) -> Option<JobId> {
        Some(self.id)
    }
);

/// `bury <id> <pri>\r\n`: sets a reserved job aside until it is kicked.
/// Replies `BURIED` or `NOT_FOUND`.
///
/// # Wire format
/// ```
/// # use beanstalk_proto::{cmd::Bury, Connection, WriteBuf};
/// # use bytes::Buf;
/// let mut out = WriteBuf::new();
/// Connection::default().send(&Bury::new(42, 7), &mut out)?;
/// assert_eq!(out.chunk(), b"bury 42 7\r\n");
/// # Ok::<(), beanstalk_proto::CommandError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bury {
    id: JobId,
    priority: u32,
}

impl Bury {
    /// Buries job `id` with a new `priority`.
    pub const fn new(id: JobId, priority: u32) -> Self {
        Self { id, priority }
    }
}

request!(Bury => Bury -> (),
    encode(|this, dst| encode_numbers(dst, "bury", [this.id, this.priority.into()])),
    reply(R::Buried(None) => ()),
    fn job_id(&self) -> Option<JobId> {
        Some(self.id)
    }
);

/// `touch <id>\r\n`: restarts a reserved job's time-to-run. Replies
/// `TOUCHED` or `NOT_FOUND`.
///
/// # Wire format
/// ```
/// # use beanstalk_proto::{cmd::Touch, Connection, WriteBuf};
/// # use bytes::Buf;
/// let mut out = WriteBuf::new();
/// Connection::default().send(&Touch::new(42), &mut out)?;
/// assert_eq!(out.chunk(), b"touch 42\r\n");
/// # Ok::<(), beanstalk_proto::CommandError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Touch {
    id: JobId,
}

impl Touch {
    /// Touches job `id`.
    pub const fn new(id: JobId) -> Self {
        Self { id }
    }
}

request!(Touch => Touch -> (),
    encode(|this, dst| encode_numbers(dst, "touch", [this.id])),
    reply(R::Word(crate::frame::ReplyWord::Touched) => ()),
    fn job_id(&self) -> Option<JobId> {
        Some(self.id)
    }
);

/// `kick <bound>\r\n`: moves up to `bound` jobs of the tube in use to
/// ready: buried jobs if there are any, otherwise delayed ones. Replies
/// `KICKED <count>`.
///
/// # Wire format
/// ```
/// # use beanstalk_proto::{cmd::Kick, Connection, WriteBuf};
/// # use bytes::Buf;
/// let mut out = WriteBuf::new();
/// Connection::default().send(&Kick::new(100), &mut out)?;
/// assert_eq!(out.chunk(), b"kick 100\r\n");
/// # Ok::<(), beanstalk_proto::CommandError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kick {
    bound: u32,
}

impl Kick {
    /// Kicks at most `bound` jobs.
    pub const fn new(bound: u32) -> Self {
        Self { bound }
    }
}

request!(Kick => Kick -> u64,
    encode(|this, dst| encode_numbers(dst, "kick", [this.bound.into()])),
    reply(R::Kicked(Some(count)) => count)
);

/// `kick-job <id>\r\n`: moves one buried or delayed job to ready. Replies
/// `KICKED` or `NOT_FOUND` (also for a job that is ready or reserved).
///
/// # Wire format
/// ```
/// # use beanstalk_proto::{cmd::KickJob, Connection, WriteBuf};
/// # use bytes::Buf;
/// let mut out = WriteBuf::new();
/// Connection::default().send(&KickJob::new(42), &mut out)?;
/// assert_eq!(out.chunk(), b"kick-job 42\r\n");
/// # Ok::<(), beanstalk_proto::CommandError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KickJob {
    id: JobId,
}

impl KickJob {
    /// Kicks job `id`.
    pub const fn new(id: JobId) -> Self {
        Self { id }
    }
}

request!(KickJob => KickJob -> (),
    encode(|this, dst| encode_numbers(dst, "kick-job", [this.id])),
    reply(R::Kicked(None) => ()),
    fn job_id(&self) -> Option<JobId> {
        Some(self.id)
    }
);
