//! One reply deadline for a whole connection, for drivers that serve many
//! callers.
//!
//! Replies come back in send order, so a connection is late exactly when
//! its oldest unanswered command is. A driver that watches that one
//! deadline needs one timer for the connection instead of one per caller,
//! and reads the clock once per batch of replies rather than once per
//! command. The clock stays the driver's: any instant type will do.

use core::time::Duration;

use crate::{Connection, Options, Token};

/// The deadline of the reply a connection's driver waits for next.
///
/// Call [`ReplyWatch::update`] whenever commands were queued or replies
/// handed out; it starts a fresh deadline each time a different command
/// becomes the oldest in flight, measured from that moment with the
/// command's own timeout ([`Options::reply_deadline`]). A watch belongs
/// to one [`Connection`]: tokens start again on a new one, so a driver
/// that reconnects starts a new watch (or calls [`ReplyWatch::reset`]).
///
/// ```
/// use std::time::{Duration, Instant};
/// use beanstalk_proto::reply_watch::ReplyWatch;
/// use beanstalk_proto::{cmd, Connection, Options, WriteBuf};
///
/// let options = Options::default();
/// let mut conn = Connection::new(options.config);
/// let mut watch = ReplyWatch::default();
/// let now = Instant::now();
/// let after = |limit| now.checked_add(limit);
/// assert_eq!(watch.update(&conn, &options, after), None); // nothing awaited
///
/// conn.send(&cmd::Stats, &mut WriteBuf::new())?;
/// assert_eq!(watch.update(&conn, &options, after), Some(now + Duration::from_secs(5)));
/// // The same command is still the oldest: the deadline stands.
/// let later = now + Duration::from_secs(1);
/// let after = |limit| later.checked_add(limit);
/// assert_eq!(watch.update(&conn, &options, after), Some(now + Duration::from_secs(5)));
/// # Ok::<(), beanstalk_proto::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ReplyWatch<T> {
    /// The command the deadline belongs to.
    head: Option<Token>,
    limit: Option<Duration>,
    deadline: Option<T>,
    /// Whether the head's bytes were still leaving when its deadline passed.
    sending: SendProgress,
}

impl<T> Default for ReplyWatch<T> {
    fn default() -> Self {
        Self {
            head: None,
            limit: None,
            deadline: None,
            sending: SendProgress::default(),
        }
    }
}

impl<T: Copy> ReplyWatch<T> {
    /// The deadline of the oldest reply `conn` waits for: `None` when
    /// nothing is in flight or that command may wait without limit.
    /// `after(limit)` is the instant `limit` from now, `None` if the clock
    /// cannot hold it (as for `Duration::MAX`: then there is no deadline);
    /// it is only called when the oldest command changed.
    pub fn update(
        &mut self,
        conn: &Connection,
        options: &Options,
        after: impl FnOnce(Duration) -> Option<T>,
    ) -> Option<T> {
        let head = conn.next_token();
        if head != self.head {
            self.head = head;
            self.limit = conn
                .next_reply_timeout()
                .and_then(|wait| options.reply_deadline(wait, None));
            self.deadline = self.limit.and_then(after);
            self.sending = SendProgress::default();
        }
        self.deadline
    }

    /// The deadline passed with `unsent` of the oldest command's own bytes
    /// still on their way to the server ([`own_unsent`],
    /// [`SendProgress::still_sending`]):
    /// the reply cannot have come yet, so it gets its timeout afresh, from
    /// now. Returns whether it did; if not, the reply is late.
    pub fn extend_while_sending(
        &mut self,
        unsent: OwnUnsent,
        after: impl FnOnce(Duration) -> Option<T>,
    ) -> bool {
        if !self.sending.still_sending(unsent) {
            return false;
        }
        self.deadline = self.limit.and_then(after);
        true
    }

    /// Forgets the deadline, for a new connection: its first command is
    /// the oldest from then on, whatever its token.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use beanstalk_proto::reply_watch::ReplyWatch;
    /// use beanstalk_proto::{cmd, Connection, Options, WriteBuf};
    ///
    /// let options = Options::default();
    /// let mut watch = ReplyWatch::default();
    /// let then = Instant::now();
    /// let mut old = Connection::new(options.config);
    /// old.send(&cmd::Stats, &mut WriteBuf::new())?;
    /// watch.update(&old, &options, |limit| then.checked_add(limit));
    ///
    /// let now = then + Duration::from_secs(100);
    /// let mut new = Connection::new(options.config);
    /// new.send(&cmd::Stats, &mut WriteBuf::new())?; // the same token as on `old`
    /// watch.reset();
    /// let deadline = watch.update(&new, &options, |limit| now.checked_add(limit));
    /// assert_eq!(deadline, Some(now + Duration::from_secs(5)));
    /// # Ok::<(), beanstalk_proto::Error>(())
    /// ```
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// The deadline last computed, without looking at the connection.
    pub fn deadline(&self) -> Option<T> {
        self.deadline
    }

    /// The timeout that deadline was computed with: what a driver reports
    /// in [`crate::Error::Timeout`] when it passes.
    pub fn limit(&self) -> Option<Duration> {
        self.limit
    }
}

/// What the kernel counts as written to a socket but not yet taken by its
/// peer ([`crate::read_low_water::unsent_bytes`]), in the unit the socket
/// type counts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsent {
    /// Bytes: on TCP, those not yet sent or not yet acknowledged.
    Bytes(usize),
    /// Memory: on a Unix stream socket (where Linux's `SIOCOUTQ` reads
    /// `sk_wmem_alloc`), the size of the kernel's buffers (`sk_buff`s) its
    /// peer has not read to the end. Zero exactly when the peer has read
    /// every byte, otherwise more than the bytes unread, by no fixed
    /// amount: each buffer costs its length plus 576 to about 2,400 bytes
    /// (768 for a write of a few bytes), a write makes one buffer per
    /// 36.5 KB or so (on 4 KiB pages), and a buffer the peer has read in
    /// part counts whole until it has read all of it.
    Memory(usize),
}

/// The oldest command's part its peer has not taken yet when its reply's
/// deadline passes, as far as a driver can tell ([`own_unsent`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnUnsent {
    /// Some of its bytes are not even written: a driver that writes
    /// alongside its reads (a shared connection's) is still writing it,
    /// and its write timeout bounds how long that may stall.
    Unwritten,
    /// It is all written, and this much of it the peer has not taken, in
    /// the socket's unit ([`Unsent`]): 0 once the peer has all of it.
    Left(usize),
    /// Not known.
    Unknown,
}

/// Of what `unsent` says the peer has not taken yet, the oldest command's
/// own. `behind` counts the bytes of the commands queued after it
/// ([`Connection::bytes_behind_next`]), and `unwritten` the bytes the
/// driver holds not yet written to the socket, the newest of all: the
/// later commands' bytes leave last, and a command the server has whole
/// cannot wait for them. If more are unwritten than `behind`, some of the
/// command's own are ([`OwnUnsent::Unwritten`]).
///
/// Bytes ([`Unsent::Bytes`]) count alike on both sides: all but those of
/// `behind` already written are its own. Buffer memory ([`Unsent::Memory`])
/// says its bytes are all read only when nothing was written after it:
/// then it is zero exactly when they are. With later bytes written, no
/// count of memory tells them from the command's own: a `stats` followed
/// by a 100 KB put in one write shares the first buffer with the put's
/// first 36.5 KB, and while the peer has read that buffer only in part,
/// the memory left exceeds the put's bytes by the buffers' overhead
/// although the `stats` is read; many small writes behind a command cost
/// 768 bytes each, whatever their length. So it is not known, and the
/// reply is late at its deadline: on a Unix socket, a reply's deadline
/// starts again only while nothing was written after its command.
///
/// ```
/// use beanstalk_proto::reply_watch::{own_unsent, OwnUnsent, Unsent};
///
/// let bytes = |n| Some(Unsent::Bytes(n));
/// assert_eq!(own_unsent(bytes(4_000_000), 4_000_000, 0), OwnUnsent::Left(0), "delivered");
/// assert_eq!(own_unsent(bytes(4_000_000), 1_000, 0), OwnUnsent::Left(3_999_000));
/// assert_eq!(own_unsent(None, 0, 0), OwnUnsent::Unknown);
/// // 1,000 bytes behind it, and 3,000 still to write: 2,000 of them its own.
/// assert_eq!(own_unsent(bytes(4_000_000), 1_000, 3_000), OwnUnsent::Unwritten);
/// assert_eq!(own_unsent(None, 1_000, 3_000), OwnUnsent::Unwritten);
/// // 900 of the 1,000 behind it are still to write: 100 are in the kernel.
/// assert_eq!(own_unsent(bytes(4_000), 1_000, 900), OwnUnsent::Left(3_900));
/// // A Unix socket: memory, not bytes.
/// let memory = |n| Some(Unsent::Memory(n));
/// assert_eq!(own_unsent(memory(153_344), 0, 0), OwnUnsent::Left(153_344), "nothing behind it");
/// assert_eq!(own_unsent(memory(153_344), 1_000, 1_000), OwnUnsent::Left(153_344), "none written");
/// assert_eq!(own_unsent(memory(0), 0, 0), OwnUnsent::Left(0), "read to the last byte");
/// assert_eq!(own_unsent(memory(102_400), 100_020, 0), OwnUnsent::Unknown, "its own or the put's");
/// ```
///
/// [`Connection::bytes_behind_next`]: crate::Connection::bytes_behind_next
pub fn own_unsent(unsent: Option<Unsent>, behind: usize, unwritten: usize) -> OwnUnsent {
    let Some(written_behind) = behind.checked_sub(unwritten) else {
        return OwnUnsent::Unwritten;
    };
    match unsent {
        Some(Unsent::Bytes(left)) => OwnUnsent::Left(left.saturating_sub(written_behind)),
        Some(Unsent::Memory(left)) if written_behind == 0 => OwnUnsent::Left(left),
        Some(Unsent::Memory(_)) | None => OwnUnsent::Unknown,
    }
}

/// Whether a reply whose deadline passed is late, or still waits for the
/// command's own bytes to reach the server.
///
/// A write that completed only put the command in the kernel's send
/// buffer: on loopback it holds megabytes, which a slow link or a server
/// that reads slowly takes seconds to drain, and the server cannot answer
/// before it has the whole command. So when a reply deadline passes with
/// bytes still unsent (or unacknowledged), a driver gives the reply its
/// timeout again, from then, as long as that count keeps shrinking: the
/// write timeout's rule (no limit while it moves) for the part of a write
/// the kernel took over. While part of the command is not even written,
/// the write timeout itself watches it, and the reply gets its timeout
/// again without a count. A server that stopped reading with bytes
/// pending is found late at the next deadline, one timeout later.
///
/// ```
/// use beanstalk_proto::reply_watch::{OwnUnsent, SendProgress};
///
/// let mut sending = SendProgress::default();
/// assert!(!sending.still_sending(OwnUnsent::Left(0)), "everything is there: late");
/// assert!(!sending.still_sending(OwnUnsent::Unknown), "not known: late");
/// assert!(sending.still_sending(OwnUnsent::Unwritten), "still written");
/// assert!(sending.still_sending(OwnUnsent::Left(3_000_000)));
/// assert!(sending.still_sending(OwnUnsent::Left(1_000_000)), "it moved");
/// assert!(!sending.still_sending(OwnUnsent::Left(1_000_000)), "stuck: late");
///
/// let mut sending = SendProgress::default();
/// assert!(sending.still_sending(OwnUnsent::Left(16_384)));
/// assert!(sending.still_sending(OwnUnsent::Left(0)), "just delivered: the server's timeout");
/// assert!(!sending.still_sending(OwnUnsent::Left(0)), "delivered a timeout ago: late");
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct SendProgress {
    /// What was left in the kernel when a deadline last passed.
    last: Option<usize>,
}

impl SendProgress {
    /// A deadline passed with `unsent` of the command not yet taken by the
    /// peer ([`own_unsent`]): whether it is still leaving, that is some of
    /// it is still written, or some is left in the kernel, and less than
    /// at the last deadline. The counts compared are those of one socket,
    /// so in one unit, bytes or buffer memory ([`Unsent`]). A writer tops
    /// the kernel's count up as it drains, so counts taken while the
    /// command is still written ([`OwnUnsent::Unwritten`]) would not shrink
    /// though it moves: only those once it is all written are compared.
    /// Memory shrinks only as the peer finishes a buffer, so on a Unix
    /// socket a command moves when at least one buffer (up to 36.5 KB) is
    /// read between two deadlines.
    ///
    /// A command whose last bytes left since the last deadline gets one
    /// more timeout, the server's own: it may have had the command whole
    /// for a moment only (a put that finished leaving just before its
    /// deadline was reported late while its reply was on the way).
    pub fn still_sending(&mut self, unsent: OwnUnsent) -> bool {
        match unsent {
            OwnUnsent::Unwritten => {
                // Moving, by the write timeout's watch; any count is less.
                self.last = Some(usize::MAX);
                true
            }
            OwnUnsent::Left(0) => {
                let left_since = self.last.is_some_and(|last| last > 0);
                if left_since {
                    self.last = Some(0);
                }
                left_since
            }
            OwnUnsent::Left(left) if self.last.is_none_or(|last| left < last) => {
                self.last = Some(left);
                true
            }
            OwnUnsent::Left(_) | OwnUnsent::Unknown => false,
        }
    }
}
