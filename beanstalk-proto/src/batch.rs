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
use core::iter::Peekable;

use bytes::Buf;

use crate::cmd::Request;
use crate::connection::{Connection, State, Token};
use crate::error::{Error, ProtocolError};
use crate::read_low_water::{MOST_REPLIES_AWAITED, ReadLowWater};
use crate::response::Response;
use crate::write_buf::WriteBuf;

/// The most bytes of commands a batch keeps sent but unanswered, when
/// their replies may carry bodies (`reserve`, `peek`, `stats`...).
///
/// beanstalkd stops reading a connection while it cannot write a reply,
/// and it reads commands a line at a time, so every unanswered command
/// must fit the buffers between client and server or a client that writes
/// everything before reading would wait forever: 128 KiB fits the kernel's
/// default receive buffer.
pub const MAX_UNANSWERED_BYTES: usize = 128 * 1024;

/// The most bytes of commands unanswered when every reply is one short
/// line ([`CommandKind::has_short_reply`](crate::cmd::CommandKind::has_short_reply)):
/// the server then never blocks on its replies as long as they fit the
/// client's receive buffer, which [`MAX_SHORT_REPLIES`] ensures. A larger
/// window means fewer, larger writes: two 60 KB puts per write instead of
/// one.
pub const MAX_UNANSWERED_SHORT_REPLY_BYTES: usize = 256 * 1024;

/// The most commands with short replies unanswered: 4,096 replies of at
/// most 31 bytes fit a 128 KiB receive buffer. `use`, whose reply names
/// its tube again, keeps [`MAX_UNANSWERED_BYTES`] of commands unanswered
/// instead, and so about as many bytes of replies.
pub const MAX_SHORT_REPLIES: usize = 4096;

/// Results of a pipelined batch of one kind of request.
#[derive(Debug)]
pub struct Batch<R: Request> {
    results: Vec<Option<Result<R::Output, Error>>>,
    /// Commands in flight: their token, result slot and encoded size.
    waiting: VecDeque<(Token, usize, usize)>,
    unanswered_bytes: usize,
    /// Cleared when the cap is reached, set again once half of it is
    /// answered (in bytes or in commands); see [`Batch::should_send`].
    refilling: bool,
    /// The byte cap: [`MAX_UNANSWERED_BYTES`] or, for commands with short
    /// replies, [`MAX_UNANSWERED_SHORT_REPLY_BYTES`].
    cap: usize,
    /// The most commands unanswered.
    max_waiting: usize,
    /// Commands unanswered when the cap was last reached.
    waiting_at_cap: usize,
    /// The longest command sent so far, in bytes: how much one reply can
    /// free at most.
    longest: usize,
}

impl<R: Request> Batch<R> {
    /// An empty batch with room for `capacity` results.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            results: Vec::with_capacity(capacity),
            waiting: VecDeque::new(),
            unanswered_bytes: 0,
            refilling: true,
            // Replies that repeat the command's tube are about as long as
            // the command: the commands in flight must fit where their
            // replies wait.
            cap: if R::KIND.has_short_reply() && !R::KIND.reply_repeats_tube() {
                MAX_UNANSWERED_SHORT_REPLY_BYTES
            } else {
                MAX_UNANSWERED_BYTES
            },
            max_waiting: if R::KIND.has_short_reply() {
                MAX_SHORT_REPLIES
            } else {
                usize::MAX
            },
            waiting_at_cap: 0,
            longest: 0,
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
                self.longest = self.longest.max(size);
                self.waiting.push_back((token, self.results.len(), size));
                self.results.push(None);
                if !self.can_send() {
                    self.refilling = false;
                    self.waiting_at_cap = self.waiting.len();
                }
            }
            Err(error) => self.results.push(Some(Err(error.into()))),
        }
    }

    /// Whether more may be sent before reading replies.
    pub fn can_send(&self) -> bool {
        self.fits(self.unanswered_bytes, self.waiting.len())
    }

    /// Whether one more command may be sent with `unanswered` bytes in
    /// `waiting` commands unanswered: if it keeps the unanswered bytes
    /// within the cap, taking it to be as long as the longest sent so far.
    /// With fewer than two waiting, any command may go, however long, so
    /// that the server has the next one to read while it answers the last.
    ///
    /// The cap is a bound, not a line to cross with one command more.
    /// Checked only before each command, it let five 60 KB puts out under
    /// 256 KiB (300 KB), and cross-core about one run in five of 5,000 such
    /// puts (20 of 110, blocking, tokio and smol alike) fell into a mode
    /// where the client's copies into the socket took four times their
    /// CPU and the run a quarter longer; the raw client and the shared
    /// handles (four callers), which keep four unanswered, never did. With
    /// four: none in 56 runs.
    fn fits(&self, unanswered: usize, waiting: usize) -> bool {
        waiting < self.max_waiting
            && (waiting < 2 || unanswered.saturating_add(self.longest) <= self.cap)
    }

    /// Whether a batch that reached its cap may refill with `unanswered`
    /// bytes in `waiting` commands left: half the cap is free, half the
    /// commands that filled it (rounded down, at least two) are answered,
    /// or the server is down to its last command. Large commands fill the
    /// cap with a few, and the count decides: four 60 KB puts refill after
    /// two answers, which one read can wait for exactly.
    fn may_refill(&self, unanswered: usize, waiting: usize) -> bool {
        let answered = self.waiting_at_cap.saturating_sub(waiting);
        (unanswered <= self.cap / 2 && waiting <= self.max_waiting / 2)
            || answered >= (self.waiting_at_cap / 2).max(2)
            || waiting < 2
    }

    /// Whether to send more now: like [`Batch::can_send`], but once a cap
    /// was reached, only after half of it has been answered (half its
    /// bytes, or half the commands that filled it), or when fewer than two
    /// commands are left waiting.
    ///
    /// A driver that tops up whenever a reply frees room writes one command
    /// per reply it reads, and a reader that keeps up with the server then
    /// wakes for every reply: a syscall pair per small command. Refilling
    /// from half the cap writes tens of kilobytes at a time while the server
    /// still has the other half to work on, so it never runs dry. Large
    /// commands fill the cap with a few, and half of it may be a single one:
    /// then the server gets the next as soon as half the commands are
    /// answered, or it has only one to work on.
    ///
    /// Counting commands matters to the reads in between: replies come a
    /// few bytes each, and a read can wait for two replies to `put` without
    /// waking at the first (`BURIED 1\r\n`, the shortest, is 10 bytes, and
    /// `INSERTED 12345\r\n` 16), but not for three without waking at the
    /// second. When the cap still let five 60 KB puts out, refilling after
    /// two answers instead of three took a wake-up per two puts instead of
    /// two per three, and no mark change (10,000 puts, same-core: client
    /// CPU per put blocking 18.4 → 14.9 µs, tokio 21.1 → 17.5 µs;
    /// cross-core no change beyond noise).
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
    /// assert!(!batch.can_send()); // full: 4,096 deletes unanswered
    /// # Ok::<(), beanstalk_proto::ProtocolError>(())
    /// ```
    pub fn should_send(&self) -> bool {
        self.refilling && self.can_send()
    }

    /// How many of the oldest replies must come before
    /// [`Batch::should_send`] holds again, counting at most `at_most`.
    fn replies_to_refill(&self, at_most: usize) -> usize {
        let replies = self.waiting.len().min(at_most);
        if !self.refilling && !self.may_refill_within(replies) {
            // The usual case in a long run of small commands: the window
            // refills hundreds of replies from now, so skip the walk below.
            return replies;
        }
        self.walk_to_refill(at_most)
    }

    /// [`Batch::replies_to_refill`] by answering the oldest commands one at
    /// a time.
    fn walk_to_refill(&self, at_most: usize) -> usize {
        let mut unanswered = self.unanswered_bytes;
        let mut waiting = self.waiting.len();
        let mut refilling = self.refilling;
        for (answered, (_, _, size)) in self.waiting.iter().take(at_most).enumerate() {
            unanswered -= size;
            waiting -= 1;
            refilling |= self.may_refill(unanswered, waiting);
            if refilling && self.fits(unanswered, waiting) {
                return answered + 1;
            }
        }
        self.waiting.len().min(at_most)
    }

    /// Whether [`Batch::may_refill`] can hold after `replies` more answers,
    /// judged from the counts alone: `false` only when it surely cannot.
    fn may_refill_within(&self, replies: usize) -> bool {
        let waiting = self.waiting.len() - replies;
        let most_freed = replies.saturating_mul(self.longest);
        let fewest_unanswered = self.unanswered_bytes.saturating_sub(most_freed);
        self.may_refill(fewest_unanswered, waiting)
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
                if self.may_refill(self.unanswered_bytes, self.waiting.len()) {
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
            // Not `unwrap_or`: that builds (and drops) the error for every
            // answered slot too.
            .map(|slot| match slot {
                Some(result) => result,
                None => Err(Error::Protocol(ProtocolError::Abandoned)),
            })
            .collect()
    }
}

/// A whole `execute_many`: the requests still to send and the [`Batch`]
/// of those sent, so that every adapter's loop around its own I/O is the
/// same four lines.
///
/// [`Run::fill`] queues what the window allows, tells the connection's
/// [`ReadLowWater`] how many replies the run needs before it can act again
/// ([`Run::replies_wanted`]), and says whether a reply is due; the adapter
/// then gets the next reply its usual way (one already read, or write what
/// is queued and read) and hands the outcome to [`Run::answer`]. A failed connection fails the items in flight and,
/// through the connection's sticky state, every item not sent yet.
///
/// ```
/// use beanstalk_proto::{batch::Run, cmd::Delete, read_low_water::ReadLowWater, Connection, WriteBuf};
///
/// let (mut conn, mut out) = (Connection::default(), WriteBuf::new());
/// let mut mark = ReadLowWater::default();
/// let mut input = bytes::BytesMut::from(&b"DELETED\r\nNOT_FOUND\r\n"[..]);
/// let mut run = Run::new([Delete::new(1), Delete::new(2)]);
/// while run.fill(&mut conn, &mut out, &mut mark) {
///     // An adapter writes `out` here and reads until a reply is complete.
///     let reply = conn.poll_response(&mut input).map(Option::unwrap);
///     run.answer(&conn, reply.map_err(Into::into));
/// }
/// let results = run.finish();
/// assert!(results[0].is_ok());
/// assert!(matches!(results[1], Err(beanstalk_proto::Error::NotFound)));
/// ```
pub struct Run<R: Request, I: Iterator<Item = R>> {
    requests: Peekable<I>,
    batch: Batch<R>,
}

impl<R: Request, I: Iterator<Item = R>> core::fmt::Debug for Run<R, I> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Run")
            .field(
                "done",
                &(self.batch.results.len() - self.batch.waiting.len()),
            )
            .field("waiting", &self.batch.waiting.len())
            .finish_non_exhaustive()
    }
}

impl<R: Request, I: Iterator<Item = R>> Run<R, I> {
    /// A run over `requests`, nothing sent yet.
    pub fn new(requests: impl IntoIterator<Item = R, IntoIter = I>) -> Self {
        let requests = requests.into_iter().peekable();
        let batch = Batch::with_capacity(requests.size_hint().0);
        Self { requests, batch }
    }

    /// Encodes as many requests into `dst` as the window allows (see
    /// [`Batch::should_send`]), and has the next read of `low_water` wait
    /// for the replies the run then needs ([`Run::replies_wanted`]).
    /// Returns whether a reply is due: `false` once every request has its
    /// result.
    pub fn fill(
        &mut self,
        conn: &mut Connection,
        dst: &mut WriteBuf,
        low_water: &mut ReadLowWater,
    ) -> bool {
        let due = self.send_what_fits(conn, dst);
        low_water.want_replies(due.then(|| self.replies_wanted()));
        due
    }

    /// [`Run::fill`] but for the mark.
    fn send_what_fits(&mut self, conn: &mut Connection, dst: &mut WriteBuf) -> bool {
        loop {
            while self.batch.should_send() {
                let Some(request) = self.requests.next() else {
                    break;
                };
                self.batch.send(conn, &request, dst);
            }
            if self.batch.is_waiting() {
                return true;
            }
            // Nothing in flight: every request so far was refused before
            // sending. Go on with the rest, or stop.
            if self.requests.peek().is_none() {
                return false;
            }
        }
    }

    /// How many replies the run needs before it can do anything new
    /// (after [`Run::fill`]): enough to free room for more requests, or,
    /// with every request sent, all that are due; at most
    /// [`MOST_REPLIES_AWAITED`], which is as many as a read ever waits
    /// for. What [`Run::fill`] hands to [`ReadLowWater::want_replies`].
    ///
    /// ```
    /// use beanstalk_proto::{batch::Run, cmd::Put, read_low_water::ReadLowWater, Connection, PutOptions, WriteBuf};
    ///
    /// let (mut conn, mut out) = (Connection::default(), WriteBuf::new());
    /// let body = vec![b'x'; 60_000];
    /// let puts = (0..100).map(|_| Put::new(&body[..], PutOptions::default()).unwrap());
    /// let mut run = Run::new(puts);
    /// let mut mark = ReadLowWater::default();
    /// assert!(run.fill(&mut conn, &mut out, &mut mark));
    /// // Four 60 KB puts fill the 256 KiB window; two replies are half of them.
    /// assert_eq!(conn.short_replies_due(usize::MAX), 4);
    /// assert_eq!(run.replies_wanted(), 2);
    /// // `fill` told the mark so: the read waits for two puts' shortest
    /// // replies (`BURIED 1\r\n`).
    /// assert_eq!(mark.next_for(&conn), Some(20));
    /// ```
    pub fn replies_wanted(&mut self) -> usize {
        if self.requests.peek().is_none() {
            self.batch.waiting.len().min(MOST_REPLIES_AWAITED)
        } else {
            self.batch.replies_to_refill(MOST_REPLIES_AWAITED)
        }
    }

    /// Hands over the next reply, or the error that broke the connection
    /// while waiting for it.
    pub fn answer(&mut self, conn: &Connection, reply: Result<(Token, Response), Error>) {
        match reply {
            Ok((token, response)) => self.batch.answer(token, response),
            Err(error) => self.batch.fail(conn, error),
        }
    }

    /// The results, in the order the requests were given.
    pub fn finish(self) -> Vec<Result<R::Output, Error>> {
        self.batch.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PutOptions;
    use crate::cmd::Put;
    use bytes::BytesMut;
    use proptest::prelude::*;

    proptest! {
        /// The shortcut in `replies_to_refill` never changes its answer:
        /// through any mix of command sizes, sends and answers, it agrees
        /// with answering the oldest commands one at a time.
        #[test]
        fn the_refill_shortcut_agrees_with_the_walk(
            steps in prop::collection::vec((0usize..65_000, 0usize..40), 1..60),
        ) {
            let mut conn = Connection::default();
            let mut out = WriteBuf::new();
            let mut batch = Batch::<Put<'_>>::with_capacity(0);
            let body = alloc::vec![b'x'; 65_000];
            for (body_len, answers) in steps {
                while batch.should_send() {
                    let put = Put::new(&body[..body_len], PutOptions::default()).unwrap();
                    batch.send(&mut conn, &put, &mut out);
                }
                for at_most in [1, 2, 10, usize::MAX] {
                    prop_assert_eq!(batch.replies_to_refill(at_most), batch.walk_to_refill(at_most));
                }
                for _ in 0..answers.min(batch.waiting.len()) {
                    let mut reply = BytesMut::from(&b"INSERTED 1\r\n"[..]);
                    let (token, response) = conn.poll_response(&mut reply).unwrap().unwrap();
                    batch.answer(token, response);
                }
            }
        }
    }
}
