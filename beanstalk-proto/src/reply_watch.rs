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
}

impl<T> Default for ReplyWatch<T> {
    fn default() -> Self {
        Self {
            head: None,
            limit: None,
            deadline: None,
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
        }
        self.deadline
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
        *self = Self {
            head: None,
            limit: None,
            deadline: None,
        };
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
