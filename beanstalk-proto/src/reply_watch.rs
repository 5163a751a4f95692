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
        unsent: Option<usize>,
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

/// Of what `unsent` says the peer has not taken yet, the oldest command's
/// own, with `written_behind` bytes of commands written after it (commands
/// pipelined behind it, whose bytes leave last). A command the server has
/// whole cannot wait for the bytes of later ones. `None`: not known.
///
/// Bytes ([`Unsent::Bytes`]) count alike on both sides: all but the
/// `written_behind` are its own. Buffer memory ([`Unsent::Memory`]) says
/// its bytes are all read only when nothing was written after it: then it
/// is zero exactly when they are. With later bytes written, no count of
/// memory tells them from the command's own: a `stats` followed by a 100 KB
/// put in one write shares the first buffer with the put's first 36.5 KB,
/// and while the peer has read that buffer only in part, the memory left
/// exceeds the put's bytes by the buffers' overhead although the `stats`
/// is read; many small writes behind a command cost 768 bytes each,
/// whatever their length. So it is not known, and the reply is late at its
/// deadline: on a Unix socket, a reply's deadline starts again only while
/// nothing was written after its command.
///
/// ```
/// use beanstalk_proto::reply_watch::{own_unsent, Unsent};
///
/// let bytes = |n| Some(Unsent::Bytes(n));
/// assert_eq!(own_unsent(bytes(4_000_000), 4_000_000), Some(0), "delivered");
/// assert_eq!(own_unsent(bytes(4_000_000), 1_000), Some(3_999_000));
/// assert_eq!(own_unsent(None, 0), None);
/// // A Unix socket: memory, not bytes.
/// let memory = |n| Some(Unsent::Memory(n));
/// assert_eq!(own_unsent(memory(153_344), 0), Some(153_344), "nothing behind it: its own");
/// assert_eq!(own_unsent(memory(0), 0), Some(0), "read to the last byte");
/// assert_eq!(own_unsent(memory(102_400), 100_020), None, "its own or the put's overhead");
/// ```
pub fn own_unsent(unsent: Option<Unsent>, written_behind: usize) -> Option<usize> {
    match unsent? {
        Unsent::Bytes(left) => Some(left.saturating_sub(written_behind)),
        Unsent::Memory(left) if written_behind == 0 => Some(left),
        Unsent::Memory(_) => None,
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
/// the kernel took over. A server that stopped reading with bytes
/// pending is found late at the next deadline, one timeout later.
///
/// ```
/// use beanstalk_proto::reply_watch::SendProgress;
///
/// let mut sending = SendProgress::default();
/// assert!(!sending.still_sending(Some(0)), "everything is there: late");
/// assert!(!sending.still_sending(None), "not known: late");
/// assert!(sending.still_sending(Some(3_000_000)));
/// assert!(sending.still_sending(Some(1_000_000)), "it moved");
/// assert!(!sending.still_sending(Some(1_000_000)), "stuck: late");
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct SendProgress {
    /// What was unsent when a deadline last passed.
    last: Option<usize>,
}

impl SendProgress {
    /// A deadline passed with `unsent` of the command not yet taken by the
    /// peer ([`own_unsent`]): whether it is still leaving, that is some is,
    /// and less than at the last deadline. The counts compared are those
    /// of one socket, so in one unit, bytes or buffer memory
    /// ([`Unsent`]); memory shrinks only as the peer finishes a buffer, so
    /// on a Unix socket a command "moves" when at least one buffer (up to
    /// 36.5 KB) is read between two deadlines.
    pub fn still_sending(&mut self, unsent: Option<usize>) -> bool {
        match unsent {
            Some(left) if left > 0 && self.last.is_none_or(|last| left < last) => {
                self.last = Some(left);
                true
            }
            _ => false,
        }
    }
}
