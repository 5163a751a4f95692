//! A connection owned by one task: drives a [`proto::Connection`] over a
//! tokio socket.

use std::time::Duration;

use bytes::{Buf, BytesMut};
use proto::batch::Run;
use proto::options::checked_timeout;
use proto::read_low_water::ReadLowWater;
use proto::read_size::{MIN_READ, ReadSize};
use proto::reply_watch::{SendProgress, own_unsent};
use proto::write_pacing::WritePacing;
use proto::{
    AsyncExecute, CommandError, Connection, Endpoint, Error, Options, ProtocolError, Request,
    Response, Session, Token, WriteBuf,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::stream::Stream;
use crate::watchdog::{Watchdog, deadline_after};

/// The most one read reserves and asks for, while replies arrive faster
/// than they are read (from [`MIN_READ`] up, see `proto::read_size`).
const MAX_READ: usize = 256 * 1024;

/// A beanstalkd connection owned by one task.
///
/// All 25 commands come from [`proto::AsyncCommands`] (re-exported as
/// [`crate::AsyncCommands`]). Each waits under the timeout its command calls
/// for: the read timeout (default 5 s) for commands answered at once, none
/// for `reserve`, the server-side timeout plus the read timeout for
/// `reserve-with-timeout`. A timeout, an I/O error or a protocol violation
/// closes the connection, and every later call says so.
///
/// # Cancellation
/// Dropping a command's future part-way never desynchronises the stream:
/// - for every command except a waiting reserve, the command is still
///   written and its reply is read and discarded by the next call, in order
///   (a dropped `put` may therefore still create its job);
/// - a dropped `reserve`, or `reserve-with-timeout` above 0, closes the
///   connection, because beanstalkd answers nothing else while it waits;
///   the server then releases any job it would have handed over. This makes
///   `tokio::select!` on a reserve and a shutdown signal safe.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), beanstalk_tokio::Error> {
/// # let server = beanstalk_test_support::Server::start();
/// # let address = server.url();
/// use beanstalk_tokio::{AsyncCommands, Client, PutOptions};
///
/// let mut client = Client::connect(&address).await?;
/// let receipt = client.put("hello", PutOptions::default()).await?;
/// let job = client.reserve().await?;
/// assert_eq!((job.id, &job.body[..]), (receipt.id, &b"hello"[..]));
/// client.delete(job.id).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Client {
    /// `None` once the connection is given up, so the socket closes at once.
    io: Option<Stream>,
    conn: Connection,
    rbuf: BytesMut,
    wbuf: WriteBuf,
    options: Options,
    endpoint: Endpoint,
    /// How much the next read reserves in `rbuf` and asks for.
    read_size: ReadSize,
    /// The socket's receive low-water mark: with many replies due, a read
    /// waits for a batch of them instead of waking per reply.
    low_water: ReadLowWater,
    /// Enforces the read and write timeouts without a timer per command.
    watchdog: Watchdog,
    /// Lets a hand-made pipeline's follow-up commands gather while the
    /// server is busy with earlier ones.
    pacing: WritePacing,
}

impl Client {
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
    pub async fn connect_with(address: &str, options: Options) -> Result<Self, Error> {
        Self::connect_endpoint(&address.parse()?, options).await
    }

    /// Connects to a parsed endpoint.
    pub async fn connect_endpoint(endpoint: &Endpoint, options: Options) -> Result<Self, Error> {
        let options = options.checked()?;
        let stream = Stream::connect(endpoint, options.connect_timeout).await?;
        Ok(Self {
            io: Some(stream),
            conn: Connection::new(options.config),
            rbuf: BytesMut::with_capacity(MIN_READ),
            wbuf: WriteBuf::new(),
            options,
            endpoint: endpoint.clone(),
            read_size: ReadSize::new(MAX_READ),
            low_water: ReadLowWater::default(),
            watchdog: Watchdog::new(),
            pacing: WritePacing::default(),
        })
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
        self.io.is_some() && self.conn.is_open()
    }

    /// Runs the next command with `timeout` instead of the read timeout
    /// (added to the server-side wait of `reserve-with-timeout`, and
    /// bounding even a plain `reserve`).
    ///
    /// A zero `timeout` is refused with [`CommandError::ZeroTimeout`] before
    /// anything is sent; one below [`MIN_TIMEOUT`](proto::options::MIN_TIMEOUT)
    /// waits that long.
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
    pub async fn reconnect(&mut self) -> Result<(), Error> {
        let session = self.conn.session().clone();
        let mut fresh = Self::connect_endpoint(&self.endpoint, self.options).await?;
        // Tokens of replies lost with the old connection are never reused.
        fresh.conn.continue_tokens_from(&self.conn);
        fresh.restore(&session).await?;
        *self = fresh;
        Ok(())
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
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), beanstalk_tokio::Error> {
    /// # let server = beanstalk_test_support::Server::start();
    /// use beanstalk_tokio::{cmd, Client, PutOptions};
    ///
    /// let mut client = Client::connect(&server.url()).await?;
    /// let puts = (0..1000).map(|i| cmd::Put::new(format!("job {i}"), PutOptions::default()).unwrap());
    /// let receipts = client.execute_many(puts).await;
    /// assert!(receipts.iter().all(Result::is_ok));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn execute_many<R, I>(&mut self, requests: I) -> Vec<Result<R::Output, Error>>
    where
        R: Request,
        I: IntoIterator<Item = R>,
    {
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
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), beanstalk_tokio::Error> {
    /// # let server = beanstalk_test_support::Server::start();
    /// use beanstalk_tokio::{cmd, AsyncCommands, Client, Error, PutOptions};
    /// use beanstalk_tokio::proto::Request;
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
    /// # Ok(())
    /// # }
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
        // A zero timeout is refused before anything is encoded.
        let explicit = explicit.map(checked_timeout).transpose()?;
        // Bytes and replies an earlier, cancelled call left are dealt with below, in order.
        let token = self.conn.send(&request, &mut self.wbuf)?;
        let mut guard = CancelGuard(Some(self));
        let Some(client) = guard.0.as_deref_mut() else {
            return Err(CommandError::Closed.into());
        };
        let result = client.wait_for(token, explicit).await;
        guard.0 = None;
        R::from_response(result?)
    }

    /// Writes what is queued and waits for the reply to `token`, with the
    /// same cancellation handling as any command: the second half of a
    /// command whose first half was [`Client::send`], for the reconnecting
    /// client, which keeps the request so it can send it again on a new
    /// connection.
    pub(crate) async fn finish(&mut self, token: Token) -> Result<Response, Error> {
        let mut guard = CancelGuard(Some(self));
        let Some(client) = guard.0.as_deref_mut() else {
            return Err(CommandError::Closed.into());
        };
        let result = client.wait_for(token, None).await;
        guard.0 = None;
        result
    }

    async fn wait_for(
        &mut self,
        token: Token,
        explicit: Option<Duration>,
    ) -> Result<Response, Error> {
        self.flush().await?;
        loop {
            let (answered, response) = self.next_response(explicit).await?;
            if answered == token {
                return Ok(response);
            }
            // An earlier cancelled call's reply: read in order, then dropped.
        }
    }

    /// Writes everything buffered, each write within the write timeout.
    async fn flush(&mut self) -> Result<(), Error> {
        let timeout = self.options.write_timeout;
        let taking = self.wbuf.has_remaining();
        // Whether a full send buffer still drains while a write waits.
        let mut draining = SendProgress::default();
        while self.wbuf.has_remaining() {
            let Some(io) = self.io.as_mut() else {
                return Err(self.conn.closed_error().into());
            };
            let wbuf = &self.wbuf;
            let writing = async {
                if wbuf.chunk_count() == 1 {
                    // One chunk (everything copied) is a plain write, which
                    // skips the kernel's iovec import.
                    io.write(wbuf.chunk()).await
                } else {
                    let mut slices = [std::io::IoSlice::new(&[]); 8];
                    let count = wbuf.chunks_vectored(&mut slices);
                    io.write_vectored(slices.get(..count).unwrap_or_default())
                        .await
                }
            };
            match self.watchdog.within(timeout, writing).await {
                // A writer is woken only once a good part of a full send
                // buffer drained, which a slow link takes longer than the
                // timeout to do: while what the kernel holds shrinks, the
                // write is moving, and waits again. (A stuck one fails a
                // timeout later: the first count has nothing to compare
                // with.)
                None if draining.still_sending(own_unsent(io.unsent_bytes(), 0, 0)) => {}
                None => return Err(self.fail_timeout(timeout)),
                Some(Ok(0)) => return Err(self.fail_io(std::io::ErrorKind::WriteZero.into())),
                Some(Ok(n)) => {
                    self.wbuf.advance(n);
                    draining = SendProgress::default();
                }
                Some(Err(error)) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Some(Err(error)) => return Err(self.fail_io(error)),
            }
        }
        // Counted as written once they are: a call dropped mid-write
        // leaves commands queued, and a hold that waited for their
        // replies would wait for ever.
        if taking {
            self.pacing.taken(self.conn.in_flight());
        }
        Ok(())
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
        let mut deadline = None;
        // Whether the command's bytes still leave the send buffer.
        let mut sending = SendProgress::default();
        loop {
            if let Some(reply) = self.poll_buffered()? {
                return Ok(reply);
            }
            let Some(wait) = self.conn.next_reply_timeout() else {
                return Err(Error::Protocol(ProtocolError::Abandoned));
            };
            let limit = self.options.reply_deadline(wait, explicit);
            // A limit past what the clock can hold (`Duration::MAX`) is none.
            let at =
                *deadline.get_or_insert_with(|| limit.and_then(|d| Some((deadline_after(d)?, d))));
            let Some(io) = self.io.as_mut() else {
                return Err(self.conn.closed_error().into());
            };
            // Everything is written (see the callers), so every command in flight is due.
            if let Err(error) = io.update_read_low_water(&mut self.low_water, &self.conn) {
                // A socket left asking for more than will come would
                // stall until the timeout: give it up now instead.
                return Err(self.fail_io(error));
            }
            self.rbuf.reserve(self.read_size.get());
            let reading = io.read_buf(&mut self.rbuf);
            let read = match self.watchdog.until(at.map(|(at, _)| at), reading).await {
                Some(read) => read,
                // Past the deadline, but the reply may be in, held below
                // the receive mark: what is there decides. If the reply is
                // still short, the next wait ends at once.
                None => match io.read_held(&mut self.rbuf) {
                    // The server cannot answer before it has the command:
                    // while its bytes still leave, the wait starts afresh.
                    Err(error)
                        if error.kind() == std::io::ErrorKind::WouldBlock
                            && sending.still_sending(own_unsent(
                                io.unsent_bytes(),
                                // Bytes written after it are not its own.
                                self.conn.bytes_behind_next(),
                                self.wbuf.remaining(),
                            )) =>
                    {
                        deadline = None;
                        continue;
                    }
                    Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                        let limit = at.map(|(_, limit)| limit).unwrap_or_default();
                        return Err(self.fail_timeout(limit));
                    }
                    held => held,
                },
            };
            match read {
                Ok(0) => {
                    self.io = None;
                    return Err(match self.conn.handle_eof(&self.rbuf) {
                        Err(error) => Error::Protocol(error),
                        Ok(()) => CommandError::Closed.into(),
                    });
                }
                Ok(n) => self.read_size.record(n),
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(error) => return Err(self.fail_io(error)),
            }
        }
    }

    fn fail_io(&mut self, error: std::io::Error) -> Error {
        self.conn.abandon();
        self.io = None;
        Error::Io(error)
    }

    fn fail_timeout(&mut self, limit: Duration) -> Error {
        self.conn.abandon();
        self.io = None;
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

    /// Closes the connection if nothing is in flight and the server has
    /// closed its end meanwhile (it restarted, say), so a reconnecting
    /// caller replaces it before sending, rather than send into a dead
    /// socket and have to report the outcome unknown. Free on a healthy
    /// connection: it only looks when the runtime saw the socket readable.
    pub(crate) fn close_if_peer_left(&mut self) {
        if self.conn.in_flight() == 0
            && !self.wbuf.has_remaining()
            && self.rbuf.is_empty()
            && self.io.as_ref().is_some_and(Stream::peer_closed)
        {
            self.close();
        }
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
struct CancelGuard<'a>(Option<&'a mut Client>);

impl Drop for CancelGuard<'_> {
    fn drop(&mut self) {
        if let Some(client) = self.0.take() {
            client.cancelled();
        }
    }
}

impl AsyncExecute for Client {
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
pub struct WithTimeout<'a> {
    client: &'a mut Client,
    timeout: Duration,
}

impl AsyncExecute for WithTimeout<'_> {
    fn execute<R>(&mut self, request: R) -> impl Future<Output = Result<R::Output, Error>> + Send
    where
        R: Request + Send,
        R::Output: Send,
    {
        self.client.run(request, Some(self.timeout))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use beanstalk_test_support::PausablePutServer;
    use proto::{AsyncCommands, PutOptions, cmd};

    use super::Client;
    use crate::stream::Stream;

    /// A batch dropped while its write is blocked (a server that stalls,
    /// under a caller's timeout) leaves commands queued, never written. The
    /// next call writes them and goes on: a hold that counted them as
    /// written would wait for their replies until the read timeout. The
    /// replies come from another CPU, where a `Client` holds follow-ups.
    #[test]
    fn a_batch_dropped_mid_write_does_not_hold_the_next_one_back() {
        beanstalk_test_support::cpus::pin_this_thread(0);
        let server = PausablePutServer::start(1);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let options = proto::Options::default().read_timeout(Duration::from_secs(2));
            let mut client = Client::connect_with(&server.url(), options).await.unwrap();
            // A small send buffer, so the write blocks early and for sure.
            if let Some(Stream::Tcp(socket)) = &client.io {
                socket2::SockRef::from(socket)
                    .set_send_buffer_size(4096)
                    .unwrap();
            }
            for _ in 0..5 {
                client.put("warm", PutOptions::default()).await.unwrap();
            }
            server.pause();
            let body = [b'x'; 100];
            let puts: Vec<_> = (0..400)
                .map(|_| cmd::Put::new(&body[..], PutOptions::default()).unwrap())
                .collect();
            let dropped =
                tokio::time::timeout(Duration::from_millis(300), client.execute_many(puts));
            assert!(dropped.await.is_err(), "the stalled server answered");
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
