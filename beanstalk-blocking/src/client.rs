//! The blocking client: drives a [`proto::Connection`] over a socket.

use std::io::{self, IoSlice, Read, Write};
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use proto::batch::Run;
use proto::options::checked_timeout;
use proto::read_low_water::ReadLowWater;
use proto::read_scratch::ReadScratch;
use proto::read_size::MIN_READ;
use proto::reply_watch::{SendProgress, own_unsent};
use proto::write_pacing::WritePacing;
use proto::{
    Connection, Endpoint, Error, Execute, Options, ProtocolError, Request, Response, Session,
    Token, WriteBuf,
};

use crate::stream::Stream;

/// Waits shorter than this start with poll(2), whose timer is finer than
/// the scheduler ticks a socket timeout is counted in (see
/// [`Stream::wait_readable`]): a tick of up to 10 ms would be a tenth of
/// it or more. Longer waits skip that syscall.
#[cfg(unix)]
const PRECISE_BELOW: Duration = Duration::from_millis(100);

/// The most one read asks for, while reads keep filling what they ask.
const MAX_READ: usize = 256 * 1024;

/// A blocking beanstalkd connection.
///
/// All 25 commands come from [`proto::Commands`] (re-exported as
/// [`crate::Commands`]); bring it into scope. Each call writes its command
/// and waits for the reply under the timeout the command calls for: the
/// read timeout (default 5 s) for commands answered at once, none for
/// `reserve`, and the server-side timeout plus the read timeout for
/// `reserve-with-timeout`. [`Client::with_timeout`] overrides it for one
/// call.
///
/// A timeout, an I/O error or a reply that breaks the protocol closes the
/// connection: every later call fails with
/// [`proto::CommandError::Broken`], so a late reply is never read as the
/// answer to another command. [`Client::reconnect`] opens a new one.
///
/// ```
/// # let server = beanstalk_test_support::Server::start();
/// # let address = server.url();
/// use beanstalk_blocking::{Client, Commands, PutOptions};
///
/// let mut producer = Client::connect(&address)?;
/// producer.use_tube("emails")?;
/// let receipt = producer.put("hello", PutOptions::default())?;
///
/// let mut worker = Client::connect(&address)?;
/// worker.watch("emails")?;
/// let job = worker.reserve_with_timeout(5)?;
/// assert_eq!((job.id, &job.body[..]), (receipt.id, &b"hello"[..]));
/// worker.delete(job.id)?;
/// # Ok::<(), beanstalk_blocking::Error>(())
/// ```
#[derive(Debug)]
pub struct Client {
    stream: Stream,
    conn: Connection,
    rbuf: BytesMut,
    wbuf: WriteBuf,
    options: Options,
    endpoint: Endpoint,
    /// The read timeout last set on the socket, to skip redundant syscalls.
    socket_read_timeout: Option<Duration>,
    /// Where reads land; sizes the next read from the reply sizes seen.
    scratch: ReadScratch,
    /// When the connection last waited for a reply (or opened); the
    /// reconnecting client's idle check reads it.
    last_active: Instant,
    /// The socket's receive low-water mark: with many replies due, a read
    /// waits for a batch of them instead of returning per reply.
    low_water: ReadLowWater,
    /// Lets a hand-made pipeline's follow-up commands gather while the
    /// server is busy with earlier ones.
    pacing: WritePacing,
}

impl Client {
    pub(crate) fn new(stream: Stream, options: Options, endpoint: Endpoint) -> Self {
        Self {
            stream,
            conn: Connection::new(options.config),
            rbuf: BytesMut::with_capacity(MIN_READ),
            wbuf: WriteBuf::new(),
            options,
            endpoint,
            socket_read_timeout: None,
            scratch: ReadScratch::new(MAX_READ),
            last_active: Instant::now(),
            low_water: ReadLowWater::for_blocking_reads(),
            pacing: WritePacing::default(),
        }
    }

    /// The address this client connects to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The protocol state: session, commands in flight, broken or not.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Whether the connection can still be used.
    pub fn is_open(&self) -> bool {
        self.conn.is_open()
    }

    /// Runs the next command with `timeout` instead of the client's read
    /// timeout (added to the server-side wait of `reserve-with-timeout`,
    /// and bounding even a plain `reserve`).
    ///
    /// A zero `timeout` is refused with
    /// [`CommandError::ZeroTimeout`](proto::CommandError::ZeroTimeout) before
    /// anything is sent; one below [`MIN_TIMEOUT`](proto::options::MIN_TIMEOUT)
    /// waits that long.
    ///
    /// ```
    /// # let server = beanstalk_test_support::Server::start();
    /// use beanstalk_blocking::{Client, Commands, Error};
    /// use std::time::Duration;
    ///
    /// let mut client = Client::connect(&server.url())?;
    /// // Nothing is ready: a bounded reserve gives up, and the connection closes.
    /// let result = client.with_timeout(Duration::from_millis(100)).reserve();
    /// assert!(matches!(result, Err(Error::Timeout(_))));
    /// assert!(!client.is_open());
    /// # Ok::<(), Error>(())
    /// ```
    pub fn with_timeout(&mut self, timeout: Duration) -> WithTimeout<'_> {
        WithTimeout {
            client: self,
            timeout,
        }
    }

    /// Opens a new connection to the same address and restores the tube in
    /// use and the watch list as the server last confirmed them. Jobs
    /// reserved on the old connection are not carried over: the server
    /// released them when it closed.
    pub fn reconnect(&mut self) -> Result<(), Error> {
        let session = self.conn.session().clone();
        let mut fresh = Self::connect_endpoint(&self.endpoint, self.options)?;
        // Tokens of replies lost with the old connection are never reused.
        fresh.conn.continue_tokens_from(&self.conn);
        fresh.restore(&session)?;
        self.stream.shutdown();
        *self = fresh;
        Ok(())
    }

    fn restore(&mut self, session: &Session) -> Result<(), Error> {
        let sent = self.conn.restore_session(session, &mut self.wbuf)?;
        self.flush()?;
        for _ in 0..sent {
            let (_, response) = self.next_response(None)?;
            proto::connection::check_restored(response)?;
        }
        Ok(())
    }

    /// Sends every request pipelined, within the window of
    /// [`proto::batch::Batch`] (128 KiB of commands unanswered, or 256 KiB
    /// and 4,096 commands for those with one-line replies such as `put`),
    /// and returns each one's result in order.
    ///
    /// A failing item does not stop the others. If the connection fails,
    /// the item being waited for gets the error, items already sent get
    /// [`proto::ProtocolError`] (their outcome is unknown), and items never
    /// sent get [`proto::CommandError::Broken`].
    ///
    /// ```
    /// # let server = beanstalk_test_support::Server::start();
    /// use beanstalk_blocking::{cmd, Client, PutOptions};
    ///
    /// let mut client = Client::connect(&server.url())?;
    /// let puts = (0..1000).map(|i| cmd::Put::new(format!("job {i}"), PutOptions::default()));
    /// let puts: Vec<_> = puts.collect::<Result<_, _>>()?;
    /// let receipts = client.execute_many(puts);
    /// assert_eq!(receipts.len(), 1000);
    /// let deletes = receipts.iter().map(|r| cmd::Delete::new(r.as_ref().unwrap().id));
    /// assert!(client.execute_many(deletes).iter().all(Result::is_ok));
    /// # Ok::<(), beanstalk_blocking::Error>(())
    /// ```
    pub fn execute_many<R, I>(&mut self, requests: I) -> Vec<Result<R::Output, Error>>
    where
        R: Request,
        I: IntoIterator<Item = R>,
    {
        let mut run = Run::new(requests);
        while run.fill(&mut self.conn, &mut self.wbuf, &mut self.low_water) {
            let reply = self.recv();
            run.answer(&self.conn, reply);
        }
        run.finish()
    }

    /// Queues `request` for a hand-made pipeline and returns its token;
    /// nothing is written until [`Client::recv`] needs a reply.
    ///
    /// With [`Client::recv`] this drives any pipeline, including one whose
    /// next commands depend on earlier replies, which
    /// [`Client::execute_many`] cannot do: a worker that keeps a bounded
    /// number of jobs reserved, deleting each as it arrives and reserving
    /// the next in the same write. Each reply comes back with the token of
    /// the command it answers, in send order; type it with the command's
    /// [`Request::from_response`]. Bounding what is in flight is the
    /// caller's job (beanstalkd stops reading while its replies go unread).
    /// A command run through [`proto::Commands`] meanwhile skips the
    /// replies of commands sent before it.
    ///
    /// ```
    /// # let server = beanstalk_test_support::Server::start();
    /// use beanstalk_blocking::{cmd, Client, Commands, PutOptions};
    /// use beanstalk_blocking::proto::{Request, Response};
    /// use std::collections::VecDeque;
    ///
    /// let mut client = Client::connect(&server.url())?;
    /// for i in 0..100 {
    ///     client.put(format!("job {i}"), PutOptions::default())?;
    /// }
    /// // Reserve and delete every job, with at most 8 reserved or asked for at once.
    /// let reserve = cmd::ReserveWithTimeout::new(0)?;
    /// let mut reserves = VecDeque::new();
    /// for _ in 0..8 {
    ///     reserves.push_back(client.send(&reserve)?);
    /// }
    /// let mut deleted = 0;
    /// while deleted < 100 {
    ///     let (token, reply) = client.recv()?;
    ///     if reserves.front() == Some(&token) {
    ///         reserves.pop_front();
    ///         match cmd::ReserveWithTimeout::from_response(reply) {
    ///             Ok(job) => {
    ///                 client.send(&cmd::Delete::new(job.id))?;
    ///                 reserves.push_back(client.send(&reserve)?);
    ///             }
    ///             Err(beanstalk_blocking::Error::TimedOut) => {} // none left to reserve
    ///             Err(error) => return Err(error),
    ///         }
    ///     } else {
    ///         cmd::Delete::from_response(reply)?;
    ///         deleted += 1;
    ///     }
    /// }
    /// # while !reserves.is_empty() { let (t, _) = client.recv()?; if reserves.front() == Some(&t) { reserves.pop_front(); } }
    /// # Ok::<(), beanstalk_blocking::Error>(())
    /// ```
    pub fn send<R: Request>(&mut self, request: &R) -> Result<Token, Error> {
        Ok(self.conn.send(request, &mut self.wbuf)?)
    }

    /// The next reply of a hand-made pipeline (see [`Client::send`]), with
    /// the token of the command it answers.
    ///
    /// A reply already read comes back at once; otherwise what is queued
    /// is written first and the reply is read under the timeout of the
    /// oldest command in flight. So follow-up commands sent while handling
    /// the replies of one read go out together, in one write. While 16 or
    /// more written commands are unanswered and the replies come from
    /// another CPU, follow-ups (up to 64 KiB) wait for the next replies
    /// instead: the server works through the earlier commands first anyway,
    /// and they then leave in one larger write, which saves both sides CPU
    /// ([`proto::write_pacing`]).
    pub fn recv(&mut self) -> Result<(Token, Response), Error> {
        if let Some(reply) = self.poll_buffered()? {
            if reply.1 == Response::Closing {
                // `quit` completes without a reply, maybe before it was
                // written: it must still reach the server. A write that
                // fails closes the socket, which the server sees the same way.
                let _ = self.flush();
            }
            return Ok(reply);
        }
        if self.conn.in_flight() == 0 {
            // Nothing to wait for: the caller's mistake, not a broken stream.
            return Err(self.conn.nothing_in_flight_error().into());
        }
        let across_cpus = self.low_water.replies_across_cpus();
        if !self
            .pacing
            .holds_across_cpus(across_cpus, self.wbuf.remaining())
        {
            self.flush()?;
        }
        self.next_response(None)
    }

    /// Writes everything buffered.
    fn flush(&mut self) -> Result<(), Error> {
        let taking = self.wbuf.has_remaining();
        while self.wbuf.has_remaining() {
            // One chunk (everything copied) is a plain write, which skips
            // the kernel's iovec import.
            let written = if self.wbuf.chunk_count() == 1 {
                self.stream.write(self.wbuf.chunk())
            } else {
                let mut slices = [IoSlice::new(&[]); 8];
                let count = self.wbuf.chunks_vectored(&mut slices);
                self.stream
                    .write_vectored(slices.get(..count).unwrap_or_default())
            };
            match written {
                Ok(0) => {
                    let error = io::Error::from(io::ErrorKind::WriteZero);
                    return Err(self.fail_io(error, self.options.write_timeout));
                }
                Ok(n) => self.wbuf.advance(n),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(self.fail_io(error, self.options.write_timeout)),
            }
        }
        // Counted as written once they are, as in the async clients.
        if taking {
            self.pacing.taken(self.conn.in_flight());
        }
        Ok(())
    }

    /// Returns a reply already in the read buffer, without reading.
    fn poll_buffered(&mut self) -> Result<Option<(Token, Response)>, Error> {
        let polled = self.conn.poll_response(&mut self.rbuf);
        self.pacing.note_poll(&polled);
        match polled {
            Ok(reply) => Ok(reply),
            Err(error) => {
                self.stream.shutdown();
                Err(error.into())
            }
        }
    }

    /// Reads until the next reply is complete, within the timeout that the
    /// oldest command in flight calls for (or `explicit`).
    fn next_response(&mut self, explicit: Option<Duration>) -> Result<(Token, Response), Error> {
        // When the reply is due, and the timeout it was given; read once,
        // at the first wait, since a read of the clock shows in the cost of
        // a command.
        let mut deadline: Option<Option<(Instant, Duration)>> = None;
        // Whether the command's bytes still leave the send buffer.
        let mut sending = SendProgress::default();
        loop {
            if let Some(reply) = self.poll_buffered()? {
                return Ok(reply);
            }
            let Some(wait) = self.conn.next_reply_timeout() else {
                // Nothing in flight: poll_buffered already reported why.
                return Err(Error::Protocol(ProtocolError::Abandoned));
            };
            let remaining = match deadline {
                Some(None) => None,
                Some(Some((at, total))) => {
                    let left = at.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        self.past_deadline(&mut sending, total)?;
                        deadline = None;
                        continue;
                    }
                    Some(left)
                }
                None => {
                    let timeout = self.options.reply_deadline(wait, explicit);
                    // The connection is in use now: good enough for the
                    // idle check, which only decides when to look closer.
                    let now = Instant::now();
                    self.last_active = now;
                    // A timeout past what the clock can hold (`Duration::MAX`) is none.
                    let at = timeout.and_then(|t| Some((now.checked_add(t)?, t)));
                    deadline = Some(at);
                    at.map(|(_, total)| total)
                }
            };
            // Everything is written (see the callers), so every command in flight is due.
            if let Err(error) = self
                .stream
                .update_read_low_water(&mut self.low_water, &self.conn)
            {
                // A socket left asking for more than will come would
                // stall until the timeout: give it up now instead.
                return Err(self.fail_io(error, Duration::ZERO));
            }
            self.fill(remaining, deadline.flatten())?;
        }
    }

    /// A reply's deadline passed: the server cannot answer before it has
    /// the command, so while the command's bytes still leave the send
    /// buffer the wait starts afresh (`Ok`); otherwise the reply is late.
    #[cold]
    #[inline(never)]
    fn past_deadline(&mut self, sending: &mut SendProgress, total: Duration) -> Result<(), Error> {
        // Bytes written after the oldest command are not its own.
        let own = own_unsent(
            self.stream.unsent_bytes(),
            self.conn.bytes_behind_next(),
            self.wbuf.remaining(),
        );
        if sending.still_sending(own) {
            Ok(())
        } else {
            Err(self.fail_timeout(total))
        }
    }

    /// One read into the buffer, waiting at most `remaining` (until
    /// `deadline`).
    fn fill(
        &mut self,
        remaining: Option<Duration>,
        deadline: Option<(Instant, Duration)>,
    ) -> Result<(), Error> {
        // Re-arming the socket's timeout costs a syscall, and the time left
        // differs by microseconds from one command to the next: keep the one
        // set while it is within 1/32 of what is left. One that runs out
        // before the deadline (or while waiting without one, for `reserve`)
        // only makes the read start over below; one a little late is
        // harmless.
        let close_enough = match (self.socket_read_timeout, remaining) {
            (_, None) => true,
            (Some(set), Some(left)) => set.abs_diff(left) <= left / 32,
            (None, Some(_)) => false,
        };
        if !close_enough {
            if let Err(error) = self.stream.set_read_timeout(remaining) {
                return Err(self.fail_io(error, Duration::ZERO));
            }
            self.socket_read_timeout = remaining;
        }
        #[cfg(unix)]
        if let Some(left) = remaining.filter(|left| *left < PRECISE_BELOW) {
            match self.stream.wait_readable(left) {
                Ok(true) => {}
                // The caller sees whether the deadline has passed.
                Ok(false) => return Ok(()),
                Err(error) => {
                    let total = deadline.map_or(Duration::ZERO, |(_, total)| total);
                    return Err(self.fail_io(error, total));
                }
            }
        }
        let stream = &mut self.stream;
        let read = match self
            .scratch
            .poll_read_into(&mut self.rbuf, |room| Poll::Ready(stream.read(room)))
        {
            Poll::Ready(read) => read,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        };
        match read {
            Ok(0) => {
                let error = match self.conn.handle_eof(&self.rbuf) {
                    Err(error) => Error::Protocol(error),
                    Ok(()) => Error::Command(proto::CommandError::Closed),
                };
                self.stream.shutdown();
                Err(error)
            }
            Ok(_) => Ok(()),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => Ok(()),
            // The socket's timeout ran out: the caller sees whether the
            // reply's deadline has passed.
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Ok(())
            }
            Err(error) => {
                Err(self.fail_io(error, deadline.map_or(Duration::ZERO, |(_, total)| total)))
            }
        }
    }

    /// A socket error: timeouts become [`Error::Timeout`], and either way
    /// the connection is abandoned so no late reply is misread.
    fn fail_io(&mut self, error: io::Error, timeout: Duration) -> Error {
        match error.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => self.fail_timeout(timeout),
            _ => {
                self.conn.abandon();
                self.stream.shutdown();
                Error::Io(error)
            }
        }
    }

    fn fail_timeout(&mut self, timeout: Duration) -> Error {
        self.conn.abandon();
        self.stream.shutdown();
        Error::Timeout(timeout)
    }

    fn run<R: Request>(
        &mut self,
        request: R,
        explicit: Option<Duration>,
    ) -> Result<R::Output, Error> {
        // A zero timeout is refused before anything is encoded.
        let explicit = explicit.map(checked_timeout).transpose()?;
        let token = self.conn.send(&request, &mut self.wbuf)?;
        self.flush()?;
        loop {
            let (answered, response) = self.next_response(explicit)?;
            if answered == token {
                return R::from_response(response);
            }
        }
    }

    /// Writes what is queued and reads until the reply to `token`,
    /// dropping the replies of commands sent before it.
    pub(crate) fn finish(&mut self, token: Token) -> Result<Response, Error> {
        self.flush()?;
        loop {
            let (answered, response) = self.next_response(None)?;
            if answered == token {
                return Ok(response);
            }
        }
    }

    /// A handle that can close this connection from another thread, which
    /// ends a `reserve` waiting on it (the worker's shutdown uses it).
    pub(crate) fn closer(&self) -> io::Result<Closer> {
        self.stream.try_clone().map(Closer)
    }

    /// Closes the connection if it has been quiet for `idle` or more and
    /// the server has closed its end meanwhile (it restarted, say), so a
    /// reconnecting caller replaces it before sending, rather than send
    /// into a dead socket and have to report the outcome unknown.
    pub(crate) fn close_if_peer_left(&mut self, idle: Duration) {
        if self.conn.in_flight() == 0
            && !self.wbuf.has_remaining()
            && self.last_active.elapsed() >= idle
            && self.stream.peer_closed()
        {
            self.close();
        }
    }

    /// Gives the connection up at once: the socket closes and later calls
    /// fail; the server releases every job it held.
    pub(crate) fn close(&mut self) {
        self.conn.abandon();
        self.stream.shutdown();
    }
}

/// Closes a [`Client`]'s socket from another thread; see [`Client::closer`].
#[derive(Debug)]
pub(crate) struct Closer(Stream);

impl Closer {
    /// Shuts the socket down: a read waiting on it returns at once.
    pub(crate) fn close(&self) {
        self.0.shutdown();
    }
}

impl Execute for Client {
    fn execute<R: Request>(&mut self, request: R) -> Result<R::Output, Error> {
        self.run(request, None)
    }
}

/// A client borrowed with a one-call timeout; see [`Client::with_timeout`].
#[derive(Debug)]
pub struct WithTimeout<'a> {
    client: &'a mut Client,
    timeout: Duration,
}

impl Execute for WithTimeout<'_> {
    fn execute<R: Request>(&mut self, request: R) -> Result<R::Output, Error> {
        self.client.run(request, Some(self.timeout))
    }
}
