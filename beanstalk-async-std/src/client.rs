//! A connection owned by one task: drives a [`proto::Connection`] over any
//! `futures-io` stream.

use std::io;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use futures_io::{AsyncRead, AsyncWrite};
use futures_lite::future::poll_fn;
use proto::batch::Run;
use proto::options::checked_timeout;
use proto::{
    AsyncExecute, CommandError, Connection, Endpoint, Error, Options, ProtocolError, Request,
    Response, Session, Token, WriteBuf,
};

use proto::read_low_water::ReadLowWater;
use proto::read_scratch::ReadScratch;
use proto::write_pacing::WritePacing;

use crate::io::{
    MAX_READ, UnsentBytes, UpdateLowWater, Watchdog, deadline_after, poll_read_into, poll_send,
};
use crate::stream::DefaultStream;

/// A beanstalkd connection owned by one task.
///
/// All 25 commands come from [`proto::AsyncCommands`] (re-exported as
/// [`crate::AsyncCommands`]). Each waits under the timeout its command calls
/// for: the read timeout (default 5 s) for commands answered at once, none
/// for `reserve`, the server-side timeout plus the read timeout for
/// `reserve-with-timeout`. A timeout, an I/O error or a protocol violation
/// closes the connection, and every later call says so.
///
/// `S` is the stream: [`DefaultStream`] for clients made by the connect
/// helpers, or any `futures-io` stream given to [`Client::from_stream`]
/// (TLS, a proxy tunnel, an in-memory pipe).
///
/// # Cancellation
/// Dropping a command's future part-way never desynchronises the stream:
/// - for every command except a waiting reserve, the command is still
///   written and its reply is read and discarded by the next call, in order
///   (a dropped `put` may therefore still create its job);
/// - a dropped `reserve`, or `reserve-with-timeout` above 0, closes the
///   connection, because beanstalkd answers nothing else while it waits;
///   the server then releases any job it would have handed over. This makes
///   racing a reserve against a shutdown signal
///   (`futures_lite::future::or`, `select!`) safe.
///
/// ```
/// # #[cfg(any(feature = "smol", feature = "async-std"))] // uses the connect helpers
/// # smol::block_on(async {
/// # let server = beanstalk_test_support::Server::start();
/// # let address = server.url();
/// use beanstalk_async_std::{AsyncCommands, Client, PutOptions};
///
/// let mut client = Client::connect(&address).await?;
/// let receipt = client.put("hello", PutOptions::default()).await?;
/// let job = client.reserve().await?;
/// assert_eq!((job.id, &job.body[..]), (receipt.id, &b"hello"[..]));
/// client.delete(job.id).await?;
/// # Ok::<(), beanstalk_async_std::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug)]
pub struct Client<S = DefaultStream> {
    /// `None` once the connection is given up, so the socket closes at once.
    io: Option<S>,
    conn: Connection,
    rbuf: BytesMut,
    wbuf: WriteBuf,
    scratch: ReadScratch,
    /// The timer of every write and reply deadline, kept armed between them.
    watchdog: Watchdog,
    options: Options,
    /// Where the connect helpers connected; `None` for a caller's stream.
    endpoint: Option<Endpoint>,
    /// When bytes last arrived (or the connection opened).
    last_read: Instant,
    /// The socket's receive low-water mark: with many replies due, a read
    /// waits for a batch of them instead of waking per reply.
    low_water: ReadLowWater,
    /// Lets a hand-made pipeline's follow-up commands gather while the
    /// server is busy with earlier ones.
    pacing: WritePacing,
    /// Sets that mark; only the connect helpers' sockets have one.
    update_low_water: Option<UpdateLowWater<S>>,
    /// Tells how much of what was written is still on its way: only the
    /// connect helpers' sockets can.
    unsent_bytes: Option<UnsentBytes<S>>,
    /// Why every command is refused: zero timeouts given to
    /// `from_stream`, which cannot fail. Found once, not per command.
    refused: Option<CommandError>,
}

#[cfg(any(feature = "smol", feature = "async-std"))]
impl Client<DefaultStream> {
    /// Closes the connection if it has been quiet for `idle` or more and
    /// the server has closed its end meanwhile (it restarted, say), so a
    /// reconnecting caller replaces it before sending, rather than send
    /// into a dead socket and have to report the outcome unknown.
    pub(crate) fn close_if_peer_left(&mut self, idle: Duration) {
        if self.conn.in_flight() == 0
            && self.wbuf.is_empty()
            && self.rbuf.is_empty()
            && self.last_read.elapsed() >= idle
            && self.io.as_ref().is_some_and(DefaultStream::peer_closed)
        {
            self.close();
        }
    }

    /// Connects to `address` with default [`Options`]: `host:port`,
    /// `beanstalk://host[:port]`, `[v6]:port`, `unix:///path` or a plain
    /// path.
    pub async fn connect(address: &str) -> Result<Self, Error> {
        Self::connect_with(address, Options::default()).await
    }

    /// Connects to `BEANSTALKD_URL`, or `127.0.0.1:11300` when it is unset.
    pub async fn connect_default() -> Result<Self, Error> {
        Self::connect_endpoint(&Endpoint::from_env()?, Options::default()).await
    }

    /// Connects to `address` with the given timeouts and limits.
    ///
    /// ```
    /// # smol::block_on(async {
    /// # let server = beanstalk_test_support::Server::start();
    /// # let address = server.url();
    /// use beanstalk_async_std::{AsyncCommands, Client, Options};
    /// use std::time::Duration;
    ///
    /// let options = Options::default().read_timeout(Duration::from_secs(2)).max_job_size(1 << 20);
    /// let mut client = Client::connect_with(&address, options).await?;
    /// assert_eq!(client.list_tube_used().await?.as_str(), "default");
    /// # Ok::<(), beanstalk_async_std::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn connect_with(address: &str, options: Options) -> Result<Self, Error> {
        Self::connect_endpoint(&address.parse()?, options).await
    }

    /// Connects to a parsed endpoint.
    pub async fn connect_endpoint(endpoint: &Endpoint, options: Options) -> Result<Self, Error> {
        let options = options.checked()?;
        let stream = DefaultStream::connect(endpoint, options.connect_timeout).await?;
        let mut client = Self::from_stream(stream, options);
        client.endpoint = Some(endpoint.clone());
        client.update_low_water = Some(DefaultStream::update_read_low_water);
        client.unsent_bytes = Some(DefaultStream::unsent_bytes);
        Ok(client)
    }

    /// Opens a new connection to the same address and restores the tube in
    /// use and the watch list as the server last confirmed them. Jobs
    /// reserved on the old connection are not carried over: the server
    /// released them when it closed. On failure the client is left as it
    /// was.
    ///
    /// ```
    /// # smol::block_on(async {
    /// # let server = beanstalk_test_support::Server::start();
    /// use beanstalk_async_std::{AsyncCommands, Client};
    ///
    /// let mut client = Client::connect(&server.url()).await?;
    /// client.use_tube("emails").await?;
    /// client.quit().await?;
    /// assert!(!client.is_open());
    /// client.reconnect().await?;
    /// assert_eq!(client.list_tube_used().await?.as_str(), "emails");
    /// # Ok::<(), beanstalk_async_std::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn reconnect(&mut self) -> Result<(), Error> {
        let Some(endpoint) = self.endpoint.clone() else {
            return Err(Error::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                "this client has no address to reconnect to; use reconnect_with",
            )));
        };
        let stream = DefaultStream::connect(&endpoint, self.options.connect_timeout).await?;
        self.reconnect_with(stream).await
    }
}

impl<S> Client<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    /// A client over a stream the caller connected: TLS, a tunnel, or any
    /// other `futures-io` stream. Nothing is sent until the first command.
    /// Not known to be a socket, the stream is not asked what is still
    /// leaving it: a reply's read timeout does not start again while a
    /// command's bytes drain after the write (see the crate's "Bringing
    /// your own stream").
    ///
    /// ```
    /// # smol::block_on(async {
    /// # let server = beanstalk_test_support::Server::start();
    /// # let address = server.tcp_addr();
    /// use beanstalk_async_std::{AsyncCommands, Client, Options};
    ///
    /// // Any AsyncRead + AsyncWrite + Unpin + Send stream works; a TLS
    /// // stream would be set up here.
    /// let stream = smol::net::TcpStream::connect(address).await?;
    /// let mut client = Client::from_stream(stream, Options::default());
    /// assert!(client.stats().await?.current_connections >= 1);
    /// # Ok::<(), beanstalk_async_std::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn from_stream(stream: S, options: Options) -> Self {
        // Valid options get their timeouts floored; a zero one is kept, and
        // refused by every command.
        let refused = options.checked().err();
        let options = options.checked().unwrap_or(options);
        Self {
            io: Some(stream),
            conn: Connection::new(options.config),
            rbuf: BytesMut::new(),
            wbuf: WriteBuf::new(),
            scratch: ReadScratch::new(MAX_READ),
            watchdog: Watchdog::default(),
            options,
            endpoint: None,
            last_read: Instant::now(),
            low_water: ReadLowWater::default(),
            pacing: WritePacing::default(),
            update_low_water: None,
            unsent_bytes: None,
            refused,
        }
    }

    /// Carries this client's session over to `stream`, a new connection
    /// the caller opened (as `Client::reconnect` does for clients of the
    /// connect helpers): the tube in use and the watch list are restored as
    /// the server last confirmed them. On failure the client is left as it
    /// was.
    pub async fn reconnect_with(&mut self, stream: S) -> Result<(), Error> {
        let session = self.conn.session().clone();
        let mut fresh = Self::from_stream(stream, self.options);
        fresh.endpoint = self.endpoint.clone();
        fresh.update_low_water = self.update_low_water;
        fresh.unsent_bytes = self.unsent_bytes;
        // Tokens of replies lost with the old connection are never reused.
        fresh.conn.continue_tokens_from(&self.conn);
        fresh.restore(&session).await?;
        *self = fresh;
        Ok(())
    }

    /// Runs the next command with `timeout` instead of the read timeout
    /// (added to the server-side wait of `reserve-with-timeout`, and
    /// bounding even a plain `reserve`).
    ///
    /// A zero `timeout` is refused with [`CommandError::ZeroTimeout`] before
    /// anything is sent; one below [`MIN_TIMEOUT`](proto::options::MIN_TIMEOUT)
    /// waits that long.
    ///
    /// ```
    /// # #[cfg(any(feature = "smol", feature = "async-std"))] // uses the connect helpers
    /// # smol::block_on(async {
    /// # let server = beanstalk_test_support::Server::start();
    /// use beanstalk_async_std::{AsyncCommands, Client, Error};
    /// use std::time::Duration;
    ///
    /// let mut client = Client::connect(&server.url()).await?;
    /// let waited = client.with_timeout(Duration::from_millis(100)).reserve().await;
    /// assert!(matches!(waited, Err(Error::Timeout(_))));
    /// assert!(!client.is_open(), "a timeout closes the connection");
    /// # Ok::<(), beanstalk_async_std::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn with_timeout(&mut self, timeout: Duration) -> WithTimeout<'_, S> {
        WithTimeout {
            client: self,
            timeout,
        }
    }

    /// Sends every request pipelined, within the window of
    /// [`proto::batch::Batch`] (128 KiB of commands unanswered, or 256 KiB
    /// and 4,096 commands for those with one-line replies such as `put`),
    /// and returns each one's result in order.
    ///
    /// A failing item does not stop the others. If the connection fails,
    /// the item being waited for gets the error, items already sent get a
    /// [`ProtocolError`] (their outcome is unknown) and items never sent get
    /// [`CommandError::Broken`]. Dropping the future part-way is handled as
    /// for single commands: replies of commands already written are read and
    /// discarded by the next call.
    ///
    /// ```
    /// # #[cfg(any(feature = "smol", feature = "async-std"))] // uses the connect helpers
    /// # smol::block_on(async {
    /// # let server = beanstalk_test_support::Server::start();
    /// use beanstalk_async_std::{cmd, Client, PutOptions};
    ///
    /// let mut client = Client::connect(&server.url()).await?;
    /// let puts = (0..1000).map(|i| cmd::Put::new(format!("job {i}"), PutOptions::default()).unwrap());
    /// let receipts = client.execute_many(puts).await;
    /// assert!(receipts.iter().all(Result::is_ok));
    /// # Ok::<(), beanstalk_async_std::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn execute_many<R, I>(&mut self, requests: I) -> Vec<Result<R::Output, Error>>
    where
        R: Request,
        I: IntoIterator<Item = R>,
    {
        // Zero options given to `from_stream` are refused before anything
        // is encoded, as every single command refuses them.
        if let Some(error) = self.refused {
            return requests.into_iter().map(|_| Err(error.into())).collect();
        }
        let mut guard = CancelGuard(Some(self));
        let Some(client) = guard.0.as_deref_mut() else {
            return Vec::new();
        };
        let mut run = Run::new(requests);
        while run.fill(&mut client.conn, &mut client.wbuf, &mut client.low_water) {
            let reply = client.recv().await;
            run.answer(&client.conn, reply);
        }
        guard.0 = None;
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
    /// the command it answers, in send order (replies of cancelled calls
    /// included); type it with the command's [`Request::from_response`].
    /// Bounding what is in flight is the caller's job (beanstalkd stops
    /// reading while its replies go unread). A command run through
    /// [`proto::AsyncCommands`] meanwhile skips the replies of commands
    /// sent before it.
    ///
    /// ```
    /// # #[cfg(any(feature = "smol", feature = "async-std"))] // uses the connect helpers
    /// # smol::block_on(async {
    /// # let server = beanstalk_test_support::Server::start();
    /// use beanstalk_async_std::{cmd, AsyncCommands, Client, Error, PutOptions};
    /// use beanstalk_async_std::proto::Request;
    /// use std::collections::VecDeque;
    ///
    /// let mut client = Client::connect(&server.url()).await?;
    /// for i in 0..100 {
    ///     client.put(format!("job {i}"), PutOptions::default()).await?;
    /// }
    /// // Reserve and delete every job, with at most 8 reserved or asked for at once.
    /// let reserve = cmd::ReserveWithTimeout::new(0)?;
    /// let mut reserves = VecDeque::new();
    /// for _ in 0..8 {
    ///     reserves.push_back(client.send(&reserve)?);
    /// }
    /// let mut deleted = 0;
    /// while !reserves.is_empty() {
    ///     let (token, reply) = client.recv().await?;
    ///     if reserves.front() == Some(&token) {
    ///         reserves.pop_front();
    ///         match cmd::ReserveWithTimeout::from_response(reply) {
    ///             Ok(job) => {
    ///                 client.send(&cmd::Delete::new(job.id))?;
    ///                 reserves.push_back(client.send(&reserve)?);
    ///             }
    ///             Err(Error::TimedOut) => {} // none left to reserve
    ///             Err(error) => return Err(error),
    ///         }
    ///     } else {
    ///         cmd::Delete::from_response(reply)?;
    ///         deleted += 1;
    ///     }
    /// }
    /// assert_eq!(deleted, 100);
    /// # Ok::<(), beanstalk_async_std::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn send<R: Request>(&mut self, request: &R) -> Result<Token, Error> {
        // Zero options given to `from_stream`: refused before encoding.
        if let Some(error) = self.refused {
            return Err(error.into());
        }
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
    ///
    /// Dropping the future part-way loses nothing: the reply is returned
    /// by the next call, and the connection stays open even with a waiting
    /// reserve in flight, since its token is still the caller's.
    pub async fn recv(&mut self) -> Result<(Token, Response), Error> {
        if let Some(reply) = self.poll_buffered()? {
            if reply.1 == Response::Closing {
                // `quit` completes without a reply, maybe before it was
                // written: it must still reach the server. A write that
                // fails closes the socket, which the server sees the same way.
                let _ = self.flush().await;
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
            self.flush().await?;
        }
        self.next_response(None).await
    }

    async fn run<R: Request>(
        &mut self,
        request: R,
        explicit: Option<Duration>,
    ) -> Result<R::Output, Error> {
        // A zero timeout is refused before anything is encoded; so are
        // zero options given to `from_stream`, which cannot fail.
        let explicit = explicit.map(checked_timeout).transpose()?;
        if let Some(error) = self.refused {
            return Err(error.into());
        }
        // Bytes and replies an earlier, cancelled call left are dealt with
        // below, in order.
        let token = self.conn.send(&request, &mut self.wbuf)?;
        let mut guard = CancelGuard(Some(self));
        let Some(client) = guard.0.as_deref_mut() else {
            return Err(CommandError::Closed.into());
        };
        let result = client.wait_for(token, explicit).await;
        guard.0 = None;
        R::from_response(result?)
    }

    async fn restore(&mut self, session: &Session) -> Result<(), Error> {
        let sent = self.conn.restore_session(session, &mut self.wbuf)?;
        self.flush().await?;
        for _ in 0..sent {
            let (_, response) = self.next_response(None).await?;
            proto::connection::check_restored(response)?;
        }
        Ok(())
    }

    async fn wait_for(
        &mut self,
        token: Token,
        explicit: Option<Duration>,
    ) -> Result<Response, Error> {
        self.flush().await?;
        loop {
            let (answered, response) = self.next_response(explicit).await?;
            if answered != token {
                // An earlier cancelled call's reply: read in order, then dropped.
                continue;
            }
            if matches!(response, Response::Closing) {
                // `quit` completed: nothing more can be sent, and closing our
                // end now frees the socket rather than waiting for the drop.
                self.io = None;
            }
            return Ok(response);
        }
    }

    /// Writes and flushes everything buffered. The write timeout runs from
    /// the last progress, as [`Options::write_timeout`] says, so a large
    /// batch may take longer as a whole; a write that never waits never
    /// reads the clock.
    async fn flush(&mut self) -> Result<(), Error> {
        let timeout = self.options.write_timeout;
        let Some(io) = self.io.as_mut() else {
            return Err(self.conn.closed_error().into());
        };
        let taking = self.wbuf.has_remaining();
        let (wbuf, watchdog) = (&mut self.wbuf, &mut self.watchdog);
        // `None` until the first wait; `Some(None)` for no deadline.
        let mut deadline = None;
        let sending = poll_fn(|cx| {
            let before = wbuf.remaining();
            if let Poll::Ready(sent) = poll_send(io, wbuf, cx) {
                return Poll::Ready(Some(sent));
            }
            if wbuf.remaining() < before {
                deadline = None;
            }
            match *deadline.get_or_insert_with(|| deadline_after(timeout)) {
                Some(at) => watchdog.poll_passed(cx, at).map(|()| None),
                None => Poll::Pending,
            }
        });
        match sending.await {
            Some(Ok(())) => {
                // Counted as written once they are: a call dropped
                // mid-write leaves commands queued, and a hold that waited
                // for their replies would wait for ever.
                if taking {
                    self.pacing.taken(self.conn.in_flight());
                }
                Ok(())
            }
            Some(Err(error)) => Err(self.fail_io(error)),
            None => Err(self.fail_timeout(timeout)),
        }
    }

    /// A reply already in the read buffer, without reading.
    fn poll_buffered(&mut self) -> Result<Option<(Token, Response)>, Error> {
        let polled = self.conn.poll_response(&mut self.rbuf);
        self.pacing.note_poll(&polled);
        polled.map_err(|error| {
            self.io = None;
            error.into()
        })
    }

    /// Reads until the next reply is complete, within the timeout the
    /// oldest command in flight calls for (or `explicit`).
    async fn next_response(
        &mut self,
        explicit: Option<Duration>,
    ) -> Result<(Token, Response), Error> {
        // One deadline for the whole reply, however many reads it takes.
        let mut deadline = None;
        // Whether the command's bytes still leave the send buffer.
        let mut sending = proto::reply_watch::SendProgress::default();
        loop {
            if let Some(reply) = self.poll_buffered()? {
                return Ok(reply);
            }
            let Some(wait) = self.conn.next_reply_timeout() else {
                return Err(Error::Protocol(ProtocolError::Abandoned));
            };
            let (at, limit) = *deadline.get_or_insert_with(|| {
                let limit = self.options.reply_deadline(wait, explicit);
                (limit.and_then(deadline_after), limit)
            });
            let Some(io) = self.io.as_mut() else {
                return Err(self.conn.closed_error().into());
            };
            // Everything is written (see the callers), so every command in flight is due.
            if let Some(update) = self.update_low_water {
                if let Err(error) = update(io, &mut self.low_water, &self.conn) {
                    // A socket left asking for more than will come would
                    // stall until the timeout: give it up now instead.
                    return Err(self.fail_io(error));
                }
            }
            let (scratch, rbuf) = (&mut self.scratch, &mut self.rbuf);
            let reading = poll_fn(|cx| poll_read_into(scratch, io, cx, rbuf));
            match self.watchdog.until(at, reading).await {
                // The server cannot answer before it has the command:
                // while its bytes still leave, the wait starts afresh.
                // (Bytes written after it are not its own.)
                None if sending.still_sending(proto::reply_watch::own_unsent(
                    self.unsent_bytes.and_then(|unsent| unsent(io)),
                    self.conn.bytes_behind_next(),
                    self.wbuf.remaining(),
                )) =>
                {
                    deadline = None;
                }
                None => return Err(self.fail_timeout(limit.unwrap_or_default())),
                Some(Ok(0)) => {
                    self.io = None;
                    return Err(match self.conn.handle_eof(&self.rbuf) {
                        Err(error) => Error::Protocol(error),
                        Ok(()) => CommandError::Closed.into(),
                    });
                }
                Some(Ok(_)) => self.last_read = Instant::now(),
                Some(Err(error)) if error.kind() == io::ErrorKind::Interrupted => {}
                Some(Err(error)) => return Err(self.fail_io(error)),
            }
        }
    }
}

impl<S> Client<S> {
    /// The address the connect helpers connected to; `None` for a client
    /// made with [`Client::from_stream`].
    pub fn endpoint(&self) -> Option<&Endpoint> {
        self.endpoint.as_ref()
    }

    /// The timeouts and limits in force.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The protocol state: session, commands in flight, broken or not.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Whether the connection can still be used.
    pub fn is_open(&self) -> bool {
        self.io.is_some() && self.conn.is_open()
    }

    fn fail_io(&mut self, error: io::Error) -> Error {
        self.close();
        Error::Io(error)
    }

    fn fail_timeout(&mut self, limit: Duration) -> Error {
        self.close();
        Error::Timeout(limit)
    }

    /// A caller stopped waiting. A reserve still waiting would hold every
    /// later reply back, so the connection is closed; anything else is left
    /// in flight for the next call to read and discard.
    fn cancelled(&mut self) {
        if self.conn.has_blocking_in_flight() {
            self.close();
        }
    }

    /// Writes what is queued and waits for the reply to `token`, with the
    /// same cancellation handling as any command: the second half of a
    /// command for the reconnecting client, which keeps the request so it
    /// can send it again on a new connection.
    #[cfg(any(feature = "smol", feature = "async-std"))]
    pub(crate) async fn finish(&mut self, token: Token) -> Result<Response, Error>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let mut guard = CancelGuard(Some(self));
        let Some(client) = guard.0.as_deref_mut() else {
            return Err(CommandError::Closed.into());
        };
        let result = client.wait_for(token, None).await;
        guard.0 = None;
        result
    }

    /// Gives the connection up at once: the socket closes and later calls
    /// fail.
    pub(crate) fn close(&mut self) {
        self.conn.abandon();
        self.io = None;
    }
}

/// Applies [`Client::cancelled`] if a command's future is dropped before
/// its reply.
struct CancelGuard<'a, S>(Option<&'a mut Client<S>>);

impl<S> Drop for CancelGuard<'_, S> {
    fn drop(&mut self) {
        if let Some(client) = self.0.take() {
            client.cancelled();
        }
    }
}

impl<S> AsyncExecute for Client<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    fn execute<R>(&mut self, request: R) -> impl Future<Output = Result<R::Output, Error>> + Send
    where
        R: Request + Send,
        R::Output: Send,
    {
        self.run(request, None)
    }
}

/// A client borrowed with a one-call timeout; see [`Client::with_timeout`].
#[derive(Debug)]
pub struct WithTimeout<'a, S = DefaultStream> {
    client: &'a mut Client<S>,
    timeout: Duration,
}

impl<S> AsyncExecute for WithTimeout<'_, S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    fn execute<R>(&mut self, request: R) -> impl Future<Output = Result<R::Output, Error>> + Send
    where
        R: Request + Send,
        R::Output: Send,
    {
        self.client.run(request, Some(self.timeout))
    }
}

#[cfg(all(test, feature = "smol"))]
mod tests {
    use std::time::Duration;

    use beanstalk_test_support::PausablePutServer;
    use proto::{AsyncCommands, PutOptions, cmd};

    use super::Client;

    /// A batch dropped while its write is blocked (a server that stalls,
    /// under a caller's timeout) leaves commands queued, never written. The
    /// next call writes them and goes on: a hold that counted them as
    /// written would wait for their replies until the read timeout. The
    /// replies come from another CPU, where a `Client` holds follow-ups.
    #[test]
    fn a_batch_dropped_mid_write_does_not_hold_the_next_one_back() {
        beanstalk_test_support::cpus::pin_this_thread(0);
        let server = PausablePutServer::start(1);
        smol::block_on(async {
            let options = proto::Options::default().read_timeout(Duration::from_secs(2));
            let mut client = Client::connect_with(&server.url(), options).await.unwrap();
            // A small send buffer, so the write blocks early and for sure.
            client
                .io
                .as_ref()
                .unwrap()
                .set_send_buffer_size(4096)
                .unwrap();
            for _ in 0..5 {
                client.put("warm", PutOptions::default()).await.unwrap();
            }
            server.pause();
            let body = [b'x'; 100];
            let puts: Vec<_> = (0..400)
                .map(|_| cmd::Put::new(&body[..], PutOptions::default()).unwrap())
                .collect();
            let dropped =
                futures_lite::future::or(async { Some(client.execute_many(puts).await) }, async {
                    async_io::Timer::after(Duration::from_millis(300)).await;
                    None
                });
            assert!(dropped.await.is_none(), "the stalled server answered");
            assert!(
                bytes::Buf::remaining(&client.wbuf) > 0,
                "dropped with commands still to write"
            );
            server.resume();
            let puts: Vec<_> = (0..10)
                .map(|_| cmd::Put::new("next", PutOptions::default()).unwrap())
                .collect();
            let results = client.execute_many(puts).await;
            assert!(results.iter().all(Result::is_ok), "{results:?}");
        });
    }
}
