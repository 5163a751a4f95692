//! Bookkeeping for pipelined batches: per-item results in order, and a
//! bound on unanswered bytes.
//!
//! A driver that pipelines many commands must keep reading while it writes:
//! if it wrote everything first, the server would block writing replies
//! the client is not reading, stop reading commands, and both would wait
//! forever. [`Batch`] counts the bytes sent and not yet answered so the
//! driver can stop at [`MAX_UNANSWERED_BYTES`] and read, and it puts each
//! reply (or failure) in its item's slot.
//!
//! ```
//! use beanstalk_proto::{batch::Batch, cmd::Delete, Connection, Response, ReplyWord, WriteBuf};
//!
//! let mut conn = Connection::default();
//! let mut out = WriteBuf::new();
//! let mut batch = Batch::with_capacity(2);
//! batch.send(&mut conn, &Delete::new(1), &mut out);
//! batch.send(&mut conn, &Delete::new(2), &mut out);
//! assert!(batch.can_send() && batch.is_waiting());
//! // ... write `out`, read replies, and hand each over:
//! let mut input = bytes::BytesMut::from(&b"DELETED\r\nNOT_FOUND\r\n"[..]);
//! while let Some((token, reply)) = conn.poll_response(&mut input)? {
//!     batch.answer(token, reply);
//! }
//! let results = batch.finish();
//! assert!(results[0].is_ok());
//! assert!(matches!(results[1], Err(beanstalk_proto::Error::NotFound)));
//! # Ok::<(), beanstalk_proto::ProtocolError>(())
//! ```

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use bytes::Buf;

use crate::cmd::Request;
use crate::connection::{Connection, State, Token};
use crate::error::{Error, ProtocolError};
use crate::response::Response;
use crate::write_buf::WriteBuf;

/// The most bytes of commands a batch keeps sent but unanswered.
pub const MAX_UNANSWERED_BYTES: usize = 128 * 1024;

/// Results of a pipelined batch of one kind of request.
#[derive(Debug)]
pub struct Batch<R: Request> {
    results: Vec<Option<Result<R::Output, Error>>>,
    /// Commands in flight: their token, result slot and encoded size.
    waiting: VecDeque<(Token, usize, usize)>,
    unanswered_bytes: usize,
    /// Cleared when the cap is reached, set again once half of it is
    /// answered; see [`Batch::should_send`].
    refilling: bool,
}

impl<R: Request> Batch<R> {
    /// An empty batch with room for `capacity` results.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            results: Vec::with_capacity(capacity),
            waiting: VecDeque::new(),
            unanswered_bytes: 0,
            refilling: true,
        }
    }

    /// Encodes `request` into `dst` through `conn` and gives it the next
    /// slot. A request the connection refuses gets its error at once.
    pub fn send(&mut self, conn: &mut Connection, request: &R, dst: &mut WriteBuf) {
        let before = dst.remaining();
        match conn.send(request, dst) {
            Ok(token) => {
                let size = dst.remaining().saturating_sub(before);
                self.unanswered_bytes += size;
                if self.unanswered_bytes >= MAX_UNANSWERED_BYTES {
                    self.refilling = false;
                }
                self.waiting.push_back((token, self.results.len(), size));
                self.results.push(None);
            }
            Err(error) => self.results.push(Some(Err(error.into()))),
        }
    }

    /// Whether more may be sent before reading replies.
    pub fn can_send(&self) -> bool {
        self.unanswered_bytes < MAX_UNANSWERED_BYTES
    }

    /// Whether to send more now: like [`Batch::can_send`], but once the
    /// cap was reached, only after half of it has been answered, or after
    /// the answer to a large command (16 KiB or more).
    ///
    /// A driver that tops up whenever a reply frees room writes one command
    /// per reply it reads, and a reader that keeps up with the server then
    /// wakes for every reply: a syscall pair per small command. Refilling
    /// from half the cap writes tens of kilobytes at a time while the server
    /// still has the other half to work on, so it never runs dry. A large
    /// command is worth its own write, and waiting for half the cap would
    /// leave the server a single one to work on.
    ///
    /// ```
    /// use beanstalk_proto::{batch::Batch, cmd::Delete, Connection, WriteBuf};
    ///
    /// let (mut conn, mut out) = (Connection::default(), WriteBuf::new());
    /// let mut batch = Batch::with_capacity(20_000);
    /// let mut id = 0;
    /// while batch.should_send() {
    ///     id += 1;
    ///     batch.send(&mut conn, &Delete::new(id), &mut out);
    /// }
    /// assert!(!batch.can_send()); // full: 128 KiB of deletes unanswered
    /// # Ok::<(), beanstalk_proto::ProtocolError>(())
    /// ```
    pub fn should_send(&self) -> bool {
        self.refilling && self.can_send()
    }

    /// Whether any item still waits for its reply.
    pub fn is_waiting(&self) -> bool {
        !self.waiting.is_empty()
    }

    /// Hands over a reply. Replies to commands outside this batch (left by
    /// an earlier, cancelled call) are ignored.
    pub fn answer(&mut self, token: Token, response: Response) {
        if self
            .waiting
            .front()
            .is_some_and(|(waiting, _, _)| *waiting == token)
        {
            if let Some((_, slot, size)) = self.waiting.pop_front() {
                self.unanswered_bytes -= size;
                // Half the cap is free, or a large command's answer freed
                // room worth a write of its own (waiting for half the cap
                // would leave the server one large command to work on).
                if self.unanswered_bytes <= MAX_UNANSWERED_BYTES / 2
                    || size >= MAX_UNANSWERED_BYTES / 8
                {
                    self.refilling = true;
                }
                if let Some(entry) = self.results.get_mut(slot) {
                    *entry = Some(R::from_response(response));
                }
            }
        }
    }

    /// The connection failed with `error`: the oldest waiting item gets it,
    /// the others get the cause the connection recorded (their outcome is
    /// unknown too).
    pub fn fail(&mut self, conn: &Connection, error: Error) {
        let cause = match conn.state() {
            State::Broken(cause) => cause,
            _ => ProtocolError::Abandoned,
        };
        let mut first = Some(error);
        for (_, slot, _) in self.waiting.drain(..) {
            let error = first.take().unwrap_or(Error::Protocol(cause));
            if let Some(entry) = self.results.get_mut(slot) {
                *entry = Some(Err(error));
            }
        }
        self.unanswered_bytes = 0;
        self.refilling = true;
    }

    /// The results, in the order the requests were given.
    pub fn finish(self) -> Vec<Result<R::Output, Error>> {
        self.results
            .into_iter()
            .map(|slot| slot.unwrap_or(Err(Error::Protocol(ProtocolError::Abandoned))))
            .collect()
    }
}
