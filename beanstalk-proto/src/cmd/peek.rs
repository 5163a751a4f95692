//! Looking without taking: `peek`, `peek-ready`, `peek-delayed`,
//! `peek-buried`. Each returns `None` for `NOT_FOUND`: nothing to show is an
//! ordinary answer to a question, not a failure.
//!
//! `peek-ready`, `peek-delayed` and `peek-buried` look in the tube in use.

use crate::cmd::{encode_numbers, request};
use crate::frame::ReplyWord;
use crate::response::{Job, JobId};

/// `peek <id>\r\n`: the job with this id, in any state.
///
/// # Wire format
/// ```
/// # use beanstalk_proto::{cmd::Peek, Connection, WriteBuf};
/// # use bytes::Buf;
/// let mut out = WriteBuf::new();
/// Connection::default().send(&Peek::new(42), &mut out)?;
/// assert_eq!(out.chunk(), b"peek 42\r\n");
/// # Ok::<(), beanstalk_proto::CommandError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peek {
    id: JobId,
}

impl Peek {
    /// Peeks at job `id`.
    pub const fn new(id: JobId) -> Self {
        Self { id }
    }
}

request!(Peek => Peek -> Option<Job>,
    encode(|this, dst| encode_numbers(dst, "peek", [this.id])),
    reply(found @ (R::Job(_) | R::Word(ReplyWord::NotFound)) => match found {
        R::Job(job) => Some(job),
        _ => None,
    }),
    fn job_id(&self) -> Option<JobId> {
        Some(self.id)
    }
);

/// Defines a peek without arguments.
macro_rules! peek_state {
    ($(#[$doc:meta])* $name:ident, $kind:ident, $word:literal) => {
        $(#[$doc])*
        ///
        /// # Wire format
        #[doc = concat!("`", $word, "\\r\\n`")]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        pub struct $name;

        request!($name => $kind -> Option<Job>,
            encode(|_this, dst| encode_numbers(dst, $word, [])),
            reply(found @ (R::Job(_) | R::Word(ReplyWord::NotFound)) => match found {
                R::Job(job) => Some(job),
                _ => None,
            })
        );
    };
}

peek_state!(
    /// The ready job that would be reserved next from the tube in use.
    PeekReady, PeekReady, "peek-ready"
);
peek_state!(
    /// The delayed job with the shortest delay left in the tube in use.
    PeekDelayed, PeekDelayed, "peek-delayed"
);
peek_state!(
    /// The next job `kick` would kick from the tube in use.
    PeekBuried, PeekBuried, "peek-buried"
);
