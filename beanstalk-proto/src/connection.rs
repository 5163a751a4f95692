//! The per-connection state machine: the queue of commands in flight, the
//! session state the server has confirmed, and the sticky broken state.
//!
//! # How a driver uses it
//! 1. [`Connection::send`] validates a command, encodes it into a
//!    [`WriteBuf`] and queues what its reply must look like. Send as many as
//!    you like before reading: that is pipelining.
//! 2. Write the `WriteBuf` to the socket.
//! 3. Read bytes into a `BytesMut` and call [`Connection::poll_response`]
//!    until it returns `Ok(None)` (it needs more bytes). Each reply comes
//!    with the [`Token`] that `send` returned, in send order.
//! 4. On end of stream call [`Connection::handle_eof`]; when giving up on a
//!    reply (timeout, cancellation) call [`Connection::abandon`].
//!
//! Wait for each reply at most [`Connection::next_reply_timeout`], resolved
//! against your default.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use bytes::{Buf, Bytes, BytesMut};

use crate::cmd::{self, CommandKind, ReplyTimeout, Request};
use crate::config::Config;
use crate::error::{CommandError, Error, ProtocolError};
use crate::frame::{self, Frame, Head, Limits, ReplyWord, Status};
use crate::response::{Job, JobId, Response};
use crate::tube::Tube;
use crate::write_buf::WriteBuf;

/// Identifies one command sent on a connection; replies carry the token of
/// the command they answer. Tokens increase in send order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Token(u64);

impl Token {
    /// The token's sequence number (0 for the first command).
    pub const fn get(self) -> u64 {
        self.0
    }
}

/// Where the connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum State {
    /// Accepting commands.
    Open,
    /// `quit` was sent: replies to earlier commands may still come, then the
    /// server closes.
    Quitting,
    /// Closed cleanly.
    Closed,
    /// Broken by this error; nothing more can be sent or received.
    Broken(ProtocolError),
}

/// The `use` and watch state as the server last confirmed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    using: Tube,
    watching: Vec<Tube>,
}

impl Default for Session {
    /// What every new connection starts with: using and watching `default`.
    fn default() -> Self {
        Self {
            using: Tube::DEFAULT,
            watching: alloc::vec![Tube::DEFAULT],
        }
    }
}

impl Session {
    /// The tube `put` goes into.
    pub fn using(&self) -> &Tube {
        &self.using
    }

    /// The tubes `reserve` takes from, in the order they were added.
    pub fn watching(&self) -> &[Tube] {
        &self.watching
    }

    /// Whether this is a new connection's state, so nothing needs restoring.
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    fn apply(&mut self, kind: CommandKind, tube: Option<Tube>) {
        let Some(tube) = tube else { return };
        match kind {
            CommandKind::Use => self.using = tube,
            CommandKind::Watch if !self.watching.contains(&tube) => self.watching.push(tube),
            CommandKind::Ignore => self.watching.retain(|t| *t != tube),
            _ => {}
        }
    }
}

/// One command waiting for its reply.
#[derive(Debug)]
struct InFlight {
    token: Token,
    kind: CommandKind,
    timeout: ReplyTimeout,
    /// The tube of a `use`/`watch`/`ignore`, applied to the session when
    /// the server confirms it.
    tube: Option<Tube>,
    /// The command's length as encoded.
    bytes: usize,
}

/// A beanstalkd connection without the socket. See the [module
/// docs](self) for the driving loop.
///
/// ```
/// use beanstalk_proto::{cmd::{Put, Reserve}, Connection, PutOptions, Response, WriteBuf};
/// use bytes::{Buf, Bytes, BytesMut};
///
/// let mut conn = Connection::default();
/// let mut out = WriteBuf::new();
/// let put = conn.send(&Put::new("hi", PutOptions::default())?, &mut out)?;
/// let reserve = conn.send(&beanstalk_proto::cmd::Reserve, &mut out)?;
/// assert_eq!(out.chunk(), b"put 1024 0 60 2\r\nhi\r\nreserve\r\n");
///
/// // The server's replies arrive in pieces.
/// let mut input = BytesMut::from(&b"INSERTED 1\r\nRESERVED 1 2\r\nh"[..]);
/// let (token, reply) = conn.poll_response(&mut input)?.unwrap();
/// assert_eq!((token, reply), (put, Response::Inserted(1)));
/// assert_eq!(conn.poll_response(&mut input)?, None); // body incomplete
/// input.extend_from_slice(b"i\r\n");
/// let (token, reply) = conn.poll_response(&mut input)?.unwrap();
/// assert_eq!(token, reserve);
/// let job = <Reserve as beanstalk_proto::Request>::from_response(reply).unwrap();
/// assert_eq!((job.id, &job.body[..]), (1, &b"hi"[..]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Connection {
    config: Config,
    limits: Limits,
    in_flight: VecDeque<InFlight>,
    /// The sum of `in_flight`'s `bytes`.
    bytes_in_flight: usize,
    /// The input last given to `poll_response` was left holding bytes: part
    /// of the next reply, maybe all of it.
    reply_partly_buffered: bool,
    /// A job reply past the cap whose body is being read and dropped.
    skipping: Option<SkippedBody>,
    next_token: u64,
    state: State,
    session: Session,
}

/// A job reply whose body is past the client's cap: its body is read as it
/// comes and dropped, and the command gets [`Response::JobTooLarge`].
#[derive(Debug, Clone, Copy)]
struct SkippedBody {
    id: JobId,
    len: u64,
    max: usize,
    /// Body bytes still to come; the CRLF after them is checked at the end.
    left: u64,
}

impl Default for Connection {
    fn default() -> Self {
        Self::new(Config::default())
    }
}

impl Connection {
    /// A new connection's state machine with the given limits.
    pub fn new(config: Config) -> Self {
        Self {
            config,
            limits: config.limits(),
            in_flight: VecDeque::new(),
            bytes_in_flight: 0,
            reply_partly_buffered: false,
            skipping: None,
            next_token: 0,
            state: State::Open,
            session: Session::default(),
        }
    }

    /// Numbers this connection's commands on from where `earlier`'s
    /// stopped, for a connection that replaces it: a token handed out on
    /// the earlier one (its reply lost with it) then never matches a reply
    /// on this one. Call it before anything is sent.
    ///
    /// ```
    /// use beanstalk_proto::{cmd::Stats, Connection, WriteBuf};
    ///
    /// let mut out = WriteBuf::new();
    /// let mut old = Connection::default();
    /// let lost = old.send(&Stats, &mut out)?; // its reply never comes
    /// let mut new = Connection::default();
    /// new.continue_tokens_from(&old);
    /// assert_ne!(new.send(&Stats, &mut out)?, lost);
    /// # Ok::<(), beanstalk_proto::CommandError>(())
    /// ```
    pub fn continue_tokens_from(&mut self, earlier: &Self) {
        self.next_token = self.next_token.max(earlier.next_token);
    }

    // ---- getters ----

    /// The limits in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Where the connection is in its life.
    pub fn state(&self) -> State {
        self.state
    }

    /// Whether commands can be sent.
    pub fn is_open(&self) -> bool {
        self.state == State::Open
    }

    /// Commands sent whose replies have not been handed out yet, while
    /// the connection is not broken. Once it is (an error from
    /// [`Connection::poll_response`] or [`Connection::handle_eof`], or
    /// [`Connection::abandon`]) this is 0: no reply will come, and whether
    /// those commands took effect is unknown. Which commands they were is
    /// the driver's to keep: every token [`Connection::send`] returned
    /// that no reply has come back with.
    ///
    /// ```
    /// use beanstalk_proto::{cmd::Delete, Connection, WriteBuf};
    ///
    /// let (mut conn, mut out) = (Connection::default(), WriteBuf::new());
    /// conn.send(&Delete::new(1), &mut out)?;
    /// conn.send(&Delete::new(2), &mut out)?;
    /// assert_eq!(conn.in_flight(), 2);
    /// conn.abandon(); // a read timed out
    /// assert_eq!(conn.in_flight(), 0, "no reply will come for either");
    /// assert_eq!(conn.next_token(), None);
    /// # Ok::<(), beanstalk_proto::CommandError>(())
    /// ```
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// The `use`/watch state as the server has confirmed it: what a driver
    /// restores on a new connection after this one failed.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// How long the next reply may take (the oldest command in flight);
    /// `None` when nothing is in flight.
    pub fn next_reply_timeout(&self) -> Option<ReplyTimeout> {
        self.in_flight.front().map(|entry| entry.timeout)
    }

    /// Commands in flight, oldest first, whose every reply is one short
    /// line the server gives at once
    /// ([`CommandKind::has_short_reply`]: `put`, `delete`, ...), up to the
    /// first that is not (a `reserve` may wait for a job, and its reply
    /// holds back everything after it), counting at most `at_most`. What a
    /// driver that has written everything passes to
    /// [`ReadLowWater::next`](crate::read_low_water::ReadLowWater::next).
    pub fn short_replies_due(&self, at_most: usize) -> usize {
        self.in_flight
            .iter()
            .take(at_most)
            .take_while(|entry| entry.kind.has_short_reply())
            .count()
    }

    /// The fewest bytes the replies to the next `replies` commands after
    /// the oldest can take ([`CommandKind::shortest_reply`] each), counting
    /// only commands with short replies ahead of the first that has not.
    /// The oldest is left out because its reply may be partly read
    /// already: what a read can wait for with no risk of waiting for bytes
    /// that are not coming.
    ///
    /// ```
    /// use beanstalk_proto::{cmd::{Delete, Put}, Connection, PutOptions, WriteBuf};
    ///
    /// let (mut conn, mut out) = (Connection::default(), WriteBuf::new());
    /// for _ in 0..3 {
    ///     conn.send(&Put::new("x", PutOptions::default())?, &mut out)?;
    /// }
    /// conn.send(&Delete::new(1), &mut out)?;
    /// // Two puts' `BURIED 1\r\n` and a delete's `DELETED\r\n`.
    /// assert_eq!(conn.least_reply_bytes(10), 10 + 10 + 9);
    /// assert_eq!(conn.least_reply_bytes(1), 10);
    /// # Ok::<(), beanstalk_proto::CommandError>(())
    /// ```
    pub fn least_reply_bytes(&self, replies: usize) -> usize {
        self.in_flight
            .iter()
            .take_while(|entry| entry.kind.has_short_reply())
            .skip(1)
            .take(replies)
            .map(|entry| entry.kind.shortest_reply())
            .sum()
    }

    /// [`Connection::least_reply_bytes`], but counting the oldest command
    /// too when none of its reply has been read yet: the fewest bytes the
    /// replies to the oldest `replies` commands (with short replies, ahead
    /// of the first that has not) can still bring. Whether any of the
    /// oldest reply is in is known from the input last given to
    /// [`Connection::poll_response`]: if it was left empty, none is.
    ///
    /// ```
    /// use beanstalk_proto::{cmd::Put, Connection, PutOptions, WriteBuf};
    ///
    /// let (mut conn, mut out) = (Connection::default(), WriteBuf::new());
    /// for _ in 0..3 {
    ///     conn.send(&Put::new("x", PutOptions::default())?, &mut out)?;
    /// }
    /// assert_eq!(conn.least_reply_bytes_to_come(3), 30, "nothing read yet");
    /// let mut input = bytes::BytesMut::from(&b"INSERTED 1\r\nINSER"[..]);
    /// conn.poll_response(&mut input)?;
    /// conn.poll_response(&mut input)?;
    /// assert_eq!(conn.least_reply_bytes_to_come(2), 10, "the next reply is partly in");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn least_reply_bytes_to_come(&self, replies: usize) -> usize {
        if self.reply_partly_buffered {
            return self.least_reply_bytes(replies.saturating_sub(1));
        }
        self.in_flight
            .iter()
            .take_while(|entry| entry.kind.has_short_reply())
            .take(replies)
            .map(|entry| entry.kind.shortest_reply())
            .sum()
    }

    /// The length of the commands in flight, as encoded: how much the
    /// server has to read (or has read) for the replies still to come.
    /// Large commands make each reply slow to come, which
    /// [`ReadLowWater`](crate::read_low_water::ReadLowWater) takes into
    /// account.
    ///
    /// ```
    /// use beanstalk_proto::{cmd::Put, Connection, PutOptions, WriteBuf};
    ///
    /// let (mut conn, mut out) = (Connection::default(), WriteBuf::new());
    /// let options = PutOptions::default().priority(0).ttr(60);
    /// conn.send(&Put::new(vec![0; 60_000], options)?, &mut out)?;
    /// let line = "put 0 0 60 60000\r\n";
    /// assert_eq!(conn.bytes_in_flight(), line.len() + 60_000 + 2);
    /// # Ok::<(), beanstalk_proto::CommandError>(())
    /// ```
    pub fn bytes_in_flight(&self) -> usize {
        self.bytes_in_flight
    }

    /// Whether a command in flight may legitimately hold its reply back
    /// for long (`reserve`, or `reserve-with-timeout` above 0). While it
    /// waits, the server answers nothing else on this connection, so a
    /// driver whose caller gave up on such a command should close the
    /// connection rather than leave later commands stuck behind it.
    pub fn has_blocking_in_flight(&self) -> bool {
        self.in_flight.iter().any(|entry| entry.timeout.may_wait())
    }

    /// The error for a call on a connection that no longer takes commands:
    /// [`CommandError::Broken`] with the first failure, or
    /// [`CommandError::Closed`].
    pub fn closed_error(&self) -> CommandError {
        match self.state {
            State::Broken(cause) => CommandError::Broken(cause),
            _ => CommandError::Closed,
        }
    }

    /// The error for a driver's `recv` with no command in flight:
    /// [`CommandError::NothingInFlight`] on an open connection, otherwise
    /// [`Connection::closed_error`].
    pub fn nothing_in_flight_error(&self) -> CommandError {
        match self.state {
            State::Open => CommandError::NothingInFlight,
            _ => self.closed_error(),
        }
    }

    /// Bytes of the commands in flight after the oldest one, as encoded.
    /// Of what was written and the server has not taken yet, the bytes
    /// written after the oldest command are theirs and leave last: the rest
    /// is the oldest command's own ([`crate::reply_watch::own_unsent`]).
    pub fn bytes_behind_next(&self) -> usize {
        self.in_flight
            .front()
            .map_or(0, |head| self.bytes_in_flight - head.bytes)
    }

    /// The token of the oldest command still waiting for its reply;
    /// `None` when none is, and once the connection is broken (see
    /// [`Connection::in_flight`]).
    pub fn next_token(&self) -> Option<Token> {
        self.in_flight.front().map(|entry| entry.token)
    }

    // ---- inputs ----

    /// Validates `request`, encodes it into `dst` and queues it.
    ///
    /// The server answers in the order the bytes reach it, and replies are
    /// matched to commands in the order they were sent: write what `dst`
    /// holds in that order (a driver that double-buffers its writes must
    /// not reorder them).
    ///
    /// On error nothing is written and the state is unchanged. After
    /// `quit` nothing more can be sent; its [`Response::Closing`] comes out
    /// of [`Connection::poll_response`] right after the replies to the
    /// commands before it, without any bytes from the server.
    pub fn send<R: Request>(
        &mut self,
        request: &R,
        dst: &mut WriteBuf,
    ) -> Result<Token, CommandError> {
        match self.state {
            State::Open => {}
            State::Quitting | State::Closed => return Err(CommandError::Closed),
            State::Broken(cause) => return Err(CommandError::Broken(cause)),
        }
        request.check(&self.config)?;
        let before = dst.tail_len();
        let queued_before = dst.remaining();
        request.encode(dst);
        let bytes = dst.remaining() - queued_before;
        self.bytes_in_flight += bytes;
        debug_assert!(
            R::KIND == CommandKind::Put || dst.tail_len() - before <= cmd::MAX_COMMAND_LINE,
            "validated commands never exceed the server's line limit"
        );
        let token = Token(self.next_token);
        self.next_token += 1;
        if R::KIND == CommandKind::Quit {
            self.state = State::Quitting;
        }
        self.in_flight.push_back(InFlight {
            token,
            kind: R::KIND,
            timeout: request.reply_timeout(),
            tube: request.session_tube().cloned(),
            bytes,
        });
        Ok(token)
    }

    /// Takes the next whole reply off the front of `src`.
    ///
    /// `Ok(None)` means more bytes are needed. Bodies are split off `src`
    /// without copying; bodiless replies allocate nothing, but for the
    /// `WATCHING` that confirms a tube not watched before: it joins the
    /// watch list of [`Connection::session`], which may have to grow. Any
    /// error is sticky: the connection is broken and every later call
    /// returns the same error.
    #[must_use = "a reply or an error may be waiting"]
    pub fn poll_response(
        &mut self,
        src: &mut BytesMut,
    ) -> Result<Option<(Token, Response)>, ProtocolError> {
        if let State::Broken(cause) = self.state {
            return Err(cause);
        }
        if self.skipping.is_some() {
            return self.skip_body(src);
        }
        self.reply_partly_buffered = !src.is_empty();
        // `quit` has no reply: it completes once everything before it has.
        if let Some(entry) = self.in_flight.front() {
            if entry.kind == CommandKind::Quit {
                let token = entry.token;
                self.bytes_in_flight -= entry.bytes;
                self.in_flight.pop_front();
                return Ok(Some((token, Response::Closing)));
            }
        }
        if src.is_empty() {
            return Ok(None);
        }
        // The reply the oldest command usually gets is read without the
        // general parser, and needs no checks: the command accepts it.
        let usual = self
            .in_flight
            .front()
            .and_then(|entry| entry.kind.parse_usual_reply(src, &self.limits));
        let (head, line_len) = match usual {
            Some(parsed) => parsed,
            None => match frame::parse_head(src, &self.limits) {
                // Checked on the line, so a reply that cannot answer the
                // oldest command fails before its body is waited for.
                Ok(Status::Complete((head, line_len))) => match self.check_answers_oldest(&head) {
                    Ok(()) => (head, line_len),
                    Err(error) => return Err(self.fail(error)),
                },
                Ok(Status::Partial) => return Ok(None),
                Err(error @ ProtocolError::BodyTooLarge { len: _, max }) => {
                    return self.start_skipping(src, error, max);
                }
                Err(error) => return Err(self.fail(error)),
            },
        };
        let frame = match frame::frame_after_line(src, head, line_len, &self.limits) {
            Ok(Status::Complete(frame)) => frame,
            Ok(Status::Partial) => return Ok(None),
            Err(error) => return Err(self.fail(error)),
        };
        let Some(entry) = self.in_flight.pop_front() else {
            return Err(self.fail(ProtocolError::Unsolicited(frame.head.word())));
        };
        self.bytes_in_flight -= entry.bytes;
        let response = Self::own_frame(frame, &entry, &self.session.using).take_from(src);
        self.reply_partly_buffered = !src.is_empty();
        if matches!(response, Response::Using(_) | Response::Watching(_)) {
            self.session.apply(entry.kind, entry.tube);
        }
        Ok(Some((entry.token, response)))
    }

    /// A reply announced a body past the cap (`too_large`). A job's body
    /// (`RESERVED`, `FOUND`) is read as it comes and dropped, so the
    /// connection stays in sync and a reserved job stays reserved here,
    /// where its caller can bury or release it: before, the connection
    /// broke, the server released the job, and every reserve got the same
    /// job again, which held up every job behind it. Anything else over
    /// the cap (a YAML body, a length no beanstalkd sends) still breaks
    /// the connection.
    #[cold]
    fn start_skipping(
        &mut self,
        src: &mut BytesMut,
        too_large: ProtocolError,
        max: usize,
    ) -> Result<Option<(Token, Response)>, ProtocolError> {
        let Some((head, id, len, line_len)) = frame::oversized_job_head(src) else {
            return Err(self.fail(too_large));
        };
        if let Err(error) = self.check_answers_oldest(&head) {
            return Err(self.fail(error));
        }
        src.advance(line_len);
        self.skipping = Some(SkippedBody {
            id,
            len,
            max,
            left: len,
        });
        self.skip_body(src)
    }

    /// Drops what `src` holds of the body being skipped; once the body and
    /// its CRLF are in, answers the oldest command with
    /// [`Response::JobTooLarge`].
    #[cold]
    fn skip_body(
        &mut self,
        src: &mut BytesMut,
    ) -> Result<Option<(Token, Response)>, ProtocolError> {
        let Some(skip) = self.skipping.as_mut() else {
            return Ok(None);
        };
        let dropped = usize::try_from(skip.left).map_or(src.len(), |left| left.min(src.len()));
        src.advance(dropped);
        skip.left = skip
            .left
            .saturating_sub(u64::try_from(dropped).unwrap_or(u64::MAX));
        let SkippedBody { id, len, max, left } = *skip;
        // Part of a reply is in: the count of reply bytes still to come
        // leaves it out.
        self.reply_partly_buffered = true;
        if left > 0 {
            return Ok(None);
        }
        // As for a body kept: a wrong first trailer byte fails at once.
        let terminated = match src.get(..2) {
            Some(trailer) => trailer == b"\r\n",
            None => src.first().is_none_or(|&byte| byte == b'\r'),
        };
        if !terminated {
            return Err(self.fail(ProtocolError::BodyNotTerminated));
        }
        if src.len() < 2 {
            return Ok(None);
        }
        src.advance(2);
        self.skipping = None;
        self.reply_partly_buffered = !src.is_empty();
        let Some(entry) = self.in_flight.pop_front() else {
            return Err(self.fail(ProtocolError::Unsolicited(ReplyWord::Reserved)));
        };
        self.bytes_in_flight -= entry.bytes;
        Ok(Some((entry.token, Response::JobTooLarge { id, len, max })))
    }

    /// Whether `head` can answer the oldest command in flight.
    fn check_answers_oldest(&self, head: &Head<'_>) -> Result<(), ProtocolError> {
        let Some(entry) = self.in_flight.front() else {
            return Err(ProtocolError::Unsolicited(head.word()));
        };
        entry.kind.check_reply(head)?;
        match (entry.kind, head, &entry.tube) {
            (CommandKind::Use, Head::Using(name), Some(asked))
                if name.as_bytes() != asked.as_bytes() =>
            {
                Err(ProtocolError::TubeMismatch)
            }
            _ => Ok(()),
        }
    }

    /// Pipelines the commands that give this connection the tube in use and
    /// the watch list of `session` (typically taken from a connection that
    /// failed). Returns how many replies to read; pass each to
    /// [`check_restored`].
    pub fn restore_session(
        &mut self,
        session: &Session,
        dst: &mut WriteBuf,
    ) -> Result<usize, CommandError> {
        let mut sent = 0;
        if *session.using() != Tube::DEFAULT {
            self.send(&cmd::Use::new(session.using())?, dst)?;
            sent += 1;
        }
        for tube in session.watching().iter().filter(|t| **t != Tube::DEFAULT) {
            self.send(&cmd::Watch::new(tube)?, dst)?;
            sent += 1;
        }
        if !session.watching().contains(&Tube::DEFAULT) {
            self.send(&cmd::Ignore::new(Tube::DEFAULT)?, dst)?;
            sent += 1;
        }
        Ok(sent)
    }

    /// The peer closed the stream. With nothing in flight and nothing
    /// half-received this is a clean close; otherwise the connection breaks
    /// with [`ProtocolError::UnexpectedEof`].
    ///
    /// Take every whole reply out of `unread` first ([`poll_response`]
    /// until it returns `Ok(None)`): replies still in it count as
    /// unanswered here.
    ///
    /// [`poll_response`]: Connection::poll_response
    pub fn handle_eof(&mut self, unread: &[u8]) -> Result<(), ProtocolError> {
        if let State::Broken(cause) = self.state {
            return Err(cause);
        }
        let only_quit = self
            .in_flight
            .iter()
            .all(|entry| entry.kind == CommandKind::Quit);
        if only_quit && unread.is_empty() {
            self.state = State::Closed;
            Ok(())
        } else {
            let unanswered = self
                .in_flight
                .iter()
                .filter(|entry| entry.kind != CommandKind::Quit)
                .count();
            Err(self.fail(ProtocolError::UnexpectedEof {
                in_flight: unanswered,
            }))
        }
    }

    /// The driver gives up on the replies in flight (a read timed out, or a
    /// caller stopped waiting mid-reply). Their outcome is unknown and a
    /// late reply must never answer a later command, so the connection
    /// breaks for good. Does nothing to an already broken connection.
    pub fn abandon(&mut self) {
        if !matches!(self.state, State::Broken(_)) {
            self.fail(ProtocolError::Abandoned);
        }
    }

    fn fail(&mut self, error: ProtocolError) -> ProtocolError {
        self.state = State::Broken(error);
        self.in_flight.clear();
        self.bytes_in_flight = 0;
        error
    }

    /// Builds the owned reply from `frame`, ending its borrow of the read
    /// buffer; bodies are split off afterwards by [`Taken::take_from`].
    /// `using` is the tube in use as the server last confirmed it.
    // Inlined into `poll_response`, as are `take_from`, `check_reply` and
    // the single-pass line parser: as calls, passing the frame and the
    // reply through memory cost a fifth of decoding a reply (callgrind).
    #[inline(always)]
    fn own_frame(frame: Frame<'_>, entry: &InFlight, using: &Tube) -> Taken {
        let response = match frame.head {
            Head::Reserved { id, len } | Head::Found { id, len } => {
                return Taken::Body {
                    line_len: frame.line_len,
                    body_len: len,
                    job_id: Some(id),
                };
            }
            Head::Ok { len } => {
                return Taken::Body {
                    line_len: frame.line_len,
                    body_len: len,
                    job_id: None,
                };
            }
            Head::Inserted(id) => Response::Inserted(id),
            Head::Buried(id) => Response::Buried(id),
            Head::Watching(count) => Response::Watching(count),
            Head::Kicked(count) => Response::Kicked(count),
            // `use` was checked to echo our own tube: reuse it rather than copy.
            Head::Using(name) => Response::Using(match &entry.tube {
                Some(asked) => asked.clone(),
                // `list-tube-used`: replies come in order, so the server
                // names the tube every earlier `use` left it on, which is
                // shared rather than copied (a bodiless reply allocates
                // nothing). Another name is copied.
                None if name.as_bytes() == using.as_bytes() => using.clone(),
                None => Tube::from_validated(Bytes::copy_from_slice(name.as_bytes())),
            }),
            Head::Word(word) => Response::Word(word),
        };
        Taken::Done {
            response,
            len: frame.len,
        }
    }
}

/// Bodies at least this large leave the read buffer they were read into
/// to themselves.
const DETACH_BODY_MIN: usize = 256 * 1024;

/// The most bytes, buffered after such a body, copied to do so: one read
/// of the blocking and tokio clients (256 KiB), so whatever the read that
/// ended the body brought after it moves too, and never more than the
/// body itself.
const DETACH_REST_MAX: usize = 256 * 1024;

/// A reply whose line is parsed and whose bytes are still in the buffer.
enum Taken {
    /// No body: drop `len` bytes.
    Done { response: Response, len: usize },
    /// A job (with its id) or a YAML body.
    Body {
        line_len: usize,
        body_len: usize,
        job_id: Option<u64>,
    },
}

impl Taken {
    /// Removes the reply from `src`; bodies are split off, not copied.
    #[inline(always)]
    fn take_from(self, src: &mut BytesMut) -> Response {
        match self {
            Self::Done { response, len } => {
                // The reply is often all there is: emptying the buffer is
                // cheaper than moving its start, and keeps its capacity.
                if len == src.len() {
                    src.clear();
                } else {
                    src.advance(len);
                }
                response
            }
            Self::Body {
                line_len,
                body_len,
                job_id,
            } => {
                src.advance(line_len);
                let body = src.split_to(body_len).freeze();
                src.advance(2);
                if body_len >= DETACH_BODY_MIN && src.len() <= DETACH_REST_MAX {
                    // The buffer grew to hold this body and still shares its
                    // allocation: once the caller dropped the body, the
                    // next `reserve` would take all of it back and keep it
                    // for the connection's life (2 MiB after one 1 MiB
                    // job). What follows the body moves to a buffer of its
                    // own, so the allocation goes with the body.
                    *src = BytesMut::from(&src[..]);
                }
                match job_id {
                    Some(id) => Response::Job(Job { id, body }),
                    None => Response::Yaml(body),
                }
            }
        }
    }
}

/// Checks one reply to the commands [`Connection::restore_session`] sent.
pub fn check_restored(response: Response) -> Result<(), Error> {
    match response {
        Response::Using(_) | Response::Watching(_) => Ok(()),
        other => Err(other.into_error(CommandKind::Watch)),
    }
}
