//! `put`: the producer's one command.

use alloc::string::String;
use alloc::vec::Vec;

use bytes::Bytes;

use crate::cmd::{CommandKind, Request};
use crate::config::Config;
use crate::error::{CommandError, Error};
use crate::response::{JobId, Response};
use crate::write_buf::WriteBuf;

/// Options of `put`: priority, delay and time-to-run.
///
/// ```
/// use beanstalk_proto::PutOptions;
/// let urgent = PutOptions::default().priority(0).ttr(300);
/// assert_eq!((urgent.priority, urgent.delay, urgent.ttr), (0, 0, 300));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct PutOptions {
    /// Smaller is more urgent; below 1024 counts as "urgent" in stats.
    pub priority: u32,
    /// Seconds the job stays delayed before it becomes ready.
    pub delay: u32,
    /// Seconds a worker may hold the job before the server releases it.
    /// The server turns 0 into 1.
    pub ttr: u32,
}

impl Default for PutOptions {
    /// Priority 1024, no delay, 60 s to run.
    fn default() -> Self {
        Self {
            priority: 1024,
            delay: 0,
            ttr: 60,
        }
    }
}

impl PutOptions {
    /// Sets the priority.
    #[must_use]
    pub const fn priority(mut self, priority: u32) -> Self {
        self.priority = priority;
        self
    }

    /// Sets the delay in seconds.
    #[must_use]
    pub const fn delay(mut self, seconds: u32) -> Self {
        self.delay = seconds;
        self
    }

    /// Sets the time-to-run in seconds.
    #[must_use]
    pub const fn ttr(mut self, seconds: u32) -> Self {
        self.ttr = seconds;
        self
    }
}

/// A job body: borrowed (copied into the write buffer) or shared [`Bytes`]
/// (queued by reference when large, so it is never copied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body<'a> {
    /// Borrowed bytes.
    Borrowed(&'a [u8]),
    /// Shared bytes.
    Shared(Bytes),
}

impl Body<'_> {
    /// The body's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Borrowed(bytes) => bytes,
            Self::Shared(bytes) => bytes,
        }
    }

    /// The body's length.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// Whether the body is empty (an empty job is allowed).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<'a> From<&'a [u8]> for Body<'a> {
    fn from(bytes: &'a [u8]) -> Self {
        Self::Borrowed(bytes)
    }
}

impl<'a, const N: usize> From<&'a [u8; N]> for Body<'a> {
    fn from(bytes: &'a [u8; N]) -> Self {
        Self::Borrowed(bytes)
    }
}

impl<'a> From<&'a str> for Body<'a> {
    fn from(text: &'a str) -> Self {
        Self::Borrowed(text.as_bytes())
    }
}

impl<'a> From<&'a Vec<u8>> for Body<'a> {
    fn from(bytes: &'a Vec<u8>) -> Self {
        Self::Borrowed(bytes)
    }
}

impl<'a> From<&'a String> for Body<'a> {
    fn from(text: &'a String) -> Self {
        Self::Borrowed(text.as_bytes())
    }
}

impl From<Bytes> for Body<'_> {
    fn from(bytes: Bytes) -> Self {
        Self::Shared(bytes)
    }
}

impl From<&Bytes> for Body<'_> {
    fn from(bytes: &Bytes) -> Self {
        Self::Shared(bytes.clone())
    }
}

impl From<Vec<u8>> for Body<'_> {
    fn from(bytes: Vec<u8>) -> Self {
        Self::Shared(Bytes::from(bytes))
    }
}

impl From<String> for Body<'_> {
    fn from(text: String) -> Self {
        Self::Shared(Bytes::from(text.into_bytes()))
    }
}

/// What a successful `put` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct PutReceipt {
    /// The new job's id.
    pub id: JobId,
    /// `BURIED <id>`: the job was stored, but buried because the server ran
    /// out of memory growing its ready queue. It exists; kick it later.
    pub buried: bool,
}

/// `put <pri> <delay> <ttr> <bytes>\r\n<body>\r\n`: inserts a job into the
/// tube in use.
///
/// Replies: `INSERTED <id>`, `BURIED <id>` (stored but buried; still a
/// success), `JOB_TOO_BIG`, `DRAINING`. `EXPECTED_CRLF`, `BAD_FORMAT` or
/// `UNKNOWN_COMMAND` after a put mean the server is reading the body as
/// commands: the connection breaks rather than go on out of step.
///
/// # Wire format
/// ```
/// use beanstalk_proto::{cmd::Put, Connection, PutOptions, WriteBuf};
/// use bytes::Buf;
///
/// let put = Put::new("hello", PutOptions::default().priority(5).ttr(30))?;
/// let mut out = WriteBuf::new();
/// Connection::default().send(&put, &mut out)?;
/// assert_eq!(out.chunk(), b"put 5 0 30 5\r\nhello\r\n");
/// # Ok::<(), beanstalk_proto::CommandError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Put<'a> {
    body: Body<'a>,
    options: PutOptions,
}

impl<'a> Put<'a> {
    /// A put of `body` with `options`. Fails if the body is longer than
    /// the protocol can announce (`u32::MAX`); the connection's own,
    /// smaller job-size limit is checked when it is sent.
    pub fn new(body: impl Into<Body<'a>>, options: PutOptions) -> Result<Self, CommandError> {
        let body = body.into();
        if u32::try_from(body.len()).is_err() {
            return Err(CommandError::JobTooBig {
                len: body.len(),
                max: u32::MAX,
            });
        }
        Ok(Self { body, options })
    }

    /// The body.
    pub fn body(&self) -> &Body<'a> {
        &self.body
    }

    /// The options.
    pub fn options(&self) -> PutOptions {
        self.options
    }
}

impl Request for Put<'_> {
    type Output = PutReceipt;
    const KIND: CommandKind = CommandKind::Put;

    // Inlined into `Connection::send`: as a call it cost a fifth of
    // sending a put (callgrind). Not so for the other commands, whose
    // lines are short: inlining theirs made `reserve` + `delete` dearer.
    #[inline(always)]
    fn encode(&self, dst: &mut WriteBuf) {
        let PutOptions {
            priority,
            delay,
            ttr,
        } = self.options;
        let numbers = [
            priority.into(),
            delay.into(),
            ttr.into(),
            self.body.len() as u64,
        ];
        super::encode_numbers(dst, "put", numbers);
        let shared = match &self.body {
            Body::Shared(bytes) => Some(bytes),
            Body::Borrowed(_) => None,
        };
        dst.put_body(self.body.as_bytes(), shared);
        dst.put_crlf();
    }

    fn check(&self, config: &Config) -> Result<(), CommandError> {
        let max = config.job_size_limit();
        if self.body.len() > max as usize {
            return Err(CommandError::JobTooBig {
                len: self.body.len(),
                max,
            });
        }
        Ok(())
    }

    fn from_response(response: Response) -> Result<PutReceipt, Error> {
        match response {
            Response::Inserted(id) => Ok(PutReceipt { id, buried: false }),
            Response::Buried(Some(id)) => Ok(PutReceipt { id, buried: true }),
            other => Err(other.into_error(Self::KIND)),
        }
    }
}
