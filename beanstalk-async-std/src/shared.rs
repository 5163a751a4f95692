//! One connection shared by many tasks: commands from every task are
//! pipelined in FIFO order by a driver future.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use async_io::Timer;
use bytes::{Buf, BytesMut};
use futures_io::{AsyncRead, AsyncWrite};
use proto::mux::{Mux, ReplySlot, ReplyTicket};
use proto::options::checked_timeout;
use proto::reply_watch::ReplyWatch;
use proto::{AsyncExecute, Endpoint, Error, Options, ProtocolError, Request, Tube, WriteBuf};

use proto::read_low_water::ReadLowWater;
use proto::read_scratch::ReadScratch;

use crate::io::{MAX_READ, UnsentBytes, UpdateLowWater, Watchdog, deadline_after, poll_send};
use crate::readiness::ReadReadiness;

/// How many rounds of reading and writing the driver does in one poll
/// before it yields, so a busy connection cannot starve other tasks of its
/// executor thread.
const DRIVER_BUDGET: usize = 64;

/// A cheap, cloneable handle to one connection that many tasks use at once.
///
/// Each call encodes its command straight into the connection's write
/// buffer and waits for its own reply; a driver future writes whatever has
/// accumulated in one go and hands replies back in order. So concurrent
/// tasks get pipelining without batching by hand.
///
/// # The driver
/// The connect helpers and `SharedClient::from_stream` spawn the driver
/// on the runtime's executor (`smol::spawn` or `async_std::task::spawn`,
/// see the crate docs). [`SharedClient::with_driver`] hands it to the
/// caller instead, to spawn on any executor; it is the only constructor
/// without a runtime feature. The driver ends, closing the connection, once
/// every handle is dropped and the replies still due have come in (or the
/// read timeout passed), or when the connection fails.
///
/// # Tubes
/// The tube in use belongs to the handle, not to the connection: each
/// clone starts with the tube of the handle it was cloned from, and
/// [`AsyncCommands::use_tube`](proto::AsyncCommands::use_tube) changes only
/// this handle's, once the server confirms it (a refused `use` leaves the
/// handle where it was). Before a command that acts on the tube in use (`put`,
/// `kick`, the state peeks, `list-tube-used`), the handle sends `use` if the
/// connection is on another tube, in the same pipeline, so a task's jobs
/// never land in a tube another task chose. The watch list, by contrast,
/// is the connection's.
///
/// # No waiting reserves
/// beanstalkd answers nothing else on a connection while a `reserve`
/// waits, so a waiting reserve would stall every task. A shared handle
/// refuses `reserve` and `reserve-with-timeout` above 0 with
/// [`CommandError::WouldBlockShared`](proto::CommandError::WouldBlockShared); reserve on a [`crate::Client`] of its
/// own. `reserve-with-timeout 0` (answered at once) is allowed.
///
/// # Timeouts
/// Replies come back in send order, so the driver watches one deadline for
/// the whole connection: the oldest unanswered command's, counted from
/// when it became the oldest, with that command's timeout (the read
/// timeout, or the server-side wait plus the read timeout). A reply later
/// than that fails the connection; the late command's caller gets
/// [`Error::Timeout`]. One timer serves every handle, so a call costs no
/// timer of its own; only [`SharedClient::with_timeout`] arms one for its
/// call.
///
/// # Cancellation and failures
/// Dropping a call's future is always safe: its reply is read in order and
/// discarded. A timeout, I/O error or protocol violation closes the
/// connection and fails every call in flight.
///
/// ```
/// # #[cfg(any(feature = "smol", feature = "async-std"))] // uses the connect helpers
/// # smol::block_on(async {
/// # let server = beanstalk_test_support::Server::start();
/// use beanstalk_async_std::{AsyncCommands, PutOptions, SharedClient};
///
/// let client = SharedClient::connect(&server.url()).await?;
/// let mut tasks = Vec::new();
/// for task in 0..8 {
///     let mut client = client.clone();
///     tasks.push(smol::spawn(async move {
///         client.use_tube(format!("tube-{task}")).await?;
///         client.put(format!("from task {task}"), PutOptions::default()).await
///     }));
/// }
/// for task in tasks {
///     task.await?;
/// }
/// let mut client = client.clone();
/// assert_eq!(client.stats_tube("tube-3").await?.total_jobs, 1);
/// # Ok::<(), beanstalk_async_std::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct SharedClient {
    handle: Arc<Handle>,
    /// This handle's tube in use.
    tube: Tube,
    /// The timer of this handle's reply deadlines, kept armed between
    /// calls (a clone gets its own).
    watchdog: Watchdog,
    /// Where this handle's replies land (a clone gets its own).
    reply: ReplySlot,
}

/// Shared by every clone of a [`SharedClient`]; dropped with the last one,
/// which tells the driver that no more commands can come.
#[derive(Debug)]
struct Handle(Arc<Shared>);

impl Drop for Handle {
    fn drop(&mut self) {
        let waker = {
            let mut inner = self.0.lock();
            inner.handles_gone = true;
            inner.driver.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

#[derive(Debug)]
struct Shared {
    state: Mutex<Inner>,
    options: Options,
    endpoint: Option<Endpoint>,
}

#[derive(Debug)]
struct Inner {
    /// The multiplexing state from the core: commands in flight, waiters,
    /// the tube the connection will be on.
    mux: Mux<ReplyTicket>,
    /// Set when every handle is gone.
    handles_gone: bool,
    /// Wakes the driver when it waits for work. It is stored under the same
    /// lock as the write buffer, so a command queued after the driver found
    /// nothing to write always finds the waker.
    driver: Option<Waker>,
}

impl SharedClient {
    /// Connects to `address` with default [`Options`] and spawns the
    /// driver.
    #[cfg(any(feature = "smol", feature = "async-std"))]
    pub async fn connect(address: &str) -> Result<Self, Error> {
        Self::connect_with(address, Options::default()).await
    }

    /// Connects to `BEANSTALKD_URL`, or `127.0.0.1:11300` when it is unset.
    #[cfg(any(feature = "smol", feature = "async-std"))]
    pub async fn connect_default() -> Result<Self, Error> {
        Self::connect_endpoint(&Endpoint::from_env()?, Options::default()).await
    }

    /// Connects with the given timeouts and limits.
    #[cfg(any(feature = "smol", feature = "async-std"))]
    pub async fn connect_with(address: &str, options: Options) -> Result<Self, Error> {
        Self::connect_endpoint(&address.parse()?, options).await
    }

    /// Connects to a parsed endpoint.
    #[cfg(any(feature = "smol", feature = "async-std"))]
    pub async fn connect_endpoint(endpoint: &Endpoint, options: Options) -> Result<Self, Error> {
        let options = options.checked()?;
        let stream =
            crate::stream::DefaultStream::connect(endpoint, options.connect_timeout).await?;
        let (client, mut driver) = Self::build(stream, options, Some(endpoint.clone()));
        driver.update_low_water = Some(crate::stream::DefaultStream::update_read_low_water);
        driver.unsent_bytes = Some(crate::stream::DefaultStream::unsent_bytes);
        crate::runtime::Runtime::current().spawn(driver);
        Ok(client)
    }

    /// A shared client over a stream the caller connected (TLS, a tunnel),
    /// with its driver spawned on the runtime's executor.
    #[cfg(any(feature = "smol", feature = "async-std"))]
    pub fn from_stream<S>(stream: S, options: Options) -> Self
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (client, driver) = Self::build(stream, options, None);
        crate::runtime::Runtime::current().spawn(driver);
        client
    }

    /// A shared client over `stream` and the driver that moves its bytes,
    /// for the caller to spawn on an executor of its choice. Calls wait (and
    /// eventually time out) until the driver runs.
    ///
    /// ```
    /// # smol::block_on(async {
    /// # let server = beanstalk_test_support::Server::start();
    /// use beanstalk_async_std::{AsyncCommands, Options, SharedClient};
    ///
    /// let stream = smol::net::TcpStream::connect(server.tcp_addr()).await?;
    /// let (client, driver) = SharedClient::with_driver(stream, Options::default());
    /// let executor = smol::Executor::new();
    /// executor.spawn(driver).detach();
    /// let mut handle = client.clone();
    /// let tubes = executor.run(async move { handle.list_tubes().await }).await?;
    /// assert!(tubes.contains("default"));
    /// # Ok::<(), beanstalk_async_std::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn with_driver<S>(stream: S, options: Options) -> (Self, Driver<S>)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        Self::build(stream, options, None)
    }

    fn build<S>(stream: S, options: Options, endpoint: Option<Endpoint>) -> (Self, Driver<S>) {
        // Valid options get their timeouts floored; a zero one is kept, and
        // refused by every command.
        let options = options.checked().unwrap_or(options);
        let shared = Arc::new(Shared {
            state: Mutex::new(Inner {
                mux: Mux::new(options.config),
                handles_gone: false,
                driver: None,
            }),
            options,
            endpoint,
        });
        let driver = Driver {
            io: Some(stream),
            shared: Arc::clone(&shared),
            rbuf: BytesMut::new(),
            scratch: ReadScratch::new(MAX_READ),
            readiness: ReadReadiness::default(),
            out: WriteBuf::new(),
            unflushed: false,
            write_timer: None,
            drain_timer: None,
            replies: ReplyWatch::default(),
            reply_timer: Watchdog::default(),
            low_water: ReadLowWater::default(),
            update_low_water: None,
            unsent_bytes: None,
        };
        let client = Self {
            handle: Arc::new(Handle(shared)),
            tube: Tube::DEFAULT,
            watchdog: Watchdog::default(),
            reply: ReplySlot::default(),
        };
        (client, driver)
    }

    /// The address of the connection; `None` for a caller's stream.
    pub fn endpoint(&self) -> Option<&Endpoint> {
        self.shared().endpoint.as_ref()
    }

    /// This handle's tube in use.
    pub fn tube(&self) -> &Tube {
        &self.tube
    }

    /// Whether the connection can still be used.
    pub fn is_open(&self) -> bool {
        self.shared().lock().mux.is_open()
    }

    /// Closes the connection: calls in flight fail, later calls fail.
    pub fn close(&self) {
        self.shared().fail(ProtocolError::Abandoned);
    }

    /// Runs the next command through this handle with `timeout` instead of
    /// the read timeout (added to the server-side wait of
    /// `reserve-with-timeout 0`). As with any timeout, running out closes
    /// the connection for every handle.
    ///
    /// Unlike the read timeout it replaces (and a `Client`'s
    /// [`with_timeout`](crate::Client::with_timeout)), it runs from the
    /// call and does not start again while the command's bytes are still
    /// leaving the send buffer: it bounds the whole call, sending
    /// included, so a large put on a slow link needs a `timeout` that
    /// covers its transfer too.
    ///
    /// A zero `timeout` is refused with
    /// [`CommandError::ZeroTimeout`](proto::CommandError::ZeroTimeout) before
    /// anything is sent; one below [`MIN_TIMEOUT`](proto::options::MIN_TIMEOUT)
    /// waits that long.
    pub fn with_timeout(&mut self, timeout: Duration) -> SharedWithTimeout<'_> {
        SharedWithTimeout {
            client: self,
            timeout,
        }
    }

    fn shared(&self) -> &Shared {
        &self.handle.0
    }

    async fn run<R: Request>(
        &mut self,
        request: R,
        explicit: Option<Duration>,
    ) -> Result<R::Output, Error> {
        // A zero timeout is refused before anything is encoded; so are
        // zero options given to `from_stream` or `with_driver`, which
        // cannot fail.
        let explicit = explicit.map(checked_timeout).transpose()?;
        self.shared().options.checked()?;
        let (waiter, reply) = self.reply.begin();
        enqueue(&self.handle.0, &self.tube, &request, waiter)?;
        // The driver enforces the usual reply deadline for the whole
        // connection (see "Timeouts" above); only a one-call override needs
        // a timer here.
        let explicit = explicit.map(|timeout| request.reply_timeout().resolve_explicit(timeout));
        // A driver that stops without answering abandons the call.
        let response = match explicit {
            None => reply.await,
            Some(limit) => match self.watchdog.until(deadline_after(limit), reply).await {
                Some(received) => received,
                None => {
                    self.handle.0.fail(ProtocolError::Abandoned);
                    return Err(Error::Timeout(limit));
                }
            },
        };
        proto::mux::follow_use(&mut self.tube, &response);
        R::from_response(response?)
    }
}

/// Encodes `request` for a handle whose tube in use is `tube` and registers
/// `waiter` for its reply (the core inserts a `use` when the handle's tube
/// differs from the connection's, under the same lock, so no other task's
/// command can come between); then wakes the driver if the command is due
/// to be written.
fn enqueue<R: Request>(
    shared: &Shared,
    tube: &Tube,
    request: &R,
    waiter: ReplyTicket,
) -> Result<(), Error> {
    let driver = {
        let mut inner = shared.lock();
        inner.mux.enqueue(tube, request, waiter)?;
        // Output held for the next replies is taken when they come,
        // without a wake (the driver's waker stays registered).
        if inner.mux.output_due() {
            inner.driver.take()
        } else {
            None
        }
    };
    if let Some(driver) = driver {
        driver.wake();
    }
    Ok(())
}

impl AsyncExecute for SharedClient {
    fn execute<R>(&mut self, request: R) -> impl Future<Output = Result<R::Output, Error>> + Send
    where
        R: Request + Send,
        R::Output: Send,
    {
        self.run(request, None)
    }
}

/// A shared handle borrowed with a one-call timeout; see
/// [`SharedClient::with_timeout`].
#[derive(Debug)]
pub struct SharedWithTimeout<'a> {
    client: &'a mut SharedClient,
    timeout: Duration,
}

impl AsyncExecute for SharedWithTimeout<'_> {
    fn execute<R>(&mut self, request: R) -> impl Future<Output = Result<R::Output, Error>> + Send
    where
        R: Request + Send,
        R::Output: Send,
    {
        self.client.run(request, Some(self.timeout))
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves consistent data
        // (every update is a single push or pop), so keep going.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Breaks the connection from a caller's side (timeout, `close`): every
    /// waiter fails and the driver is woken to close the socket.
    fn fail(&self, cause: ProtocolError) {
        let waker = {
            let mut inner = self.lock();
            inner.fail(cause, None);
            inner.driver.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl Inner {
    /// Breaks the connection: the oldest caller waiting gets `first` (the
    /// I/O error or timeout that broke it) if given, every other one the
    /// recorded cause, and the driver stops.
    fn fail(&mut self, cause: ProtocolError, first: Option<Error>) {
        self.mux.fail(cause, first, ReplyTicket::deliver);
    }

    /// Hands every complete reply in `rbuf` to its waiter.
    fn dispatch(&mut self, rbuf: &mut BytesMut) -> Result<(), ProtocolError> {
        self.mux.dispatch(rbuf, ReplyTicket::deliver)
    }
}

/// The future that moves a [`SharedClient`]'s bytes: it writes what callers
/// encoded, reads replies and hands them out in order. Spawn it on any
/// executor (see [`SharedClient::with_driver`]); it completes when the
/// connection closes, fails or is no longer used by any handle.
#[must_use = "the driver does nothing unless it is spawned or awaited"]
pub struct Driver<S> {
    /// `None` once the driver finished, so the socket closes at once.
    io: Option<S>,
    shared: Arc<Shared>,
    rbuf: BytesMut,
    scratch: ReadScratch,
    /// Skips reads that would find nothing when callers wake the driver.
    readiness: ReadReadiness,
    /// Bytes taken from the callers' buffer and not yet written.
    out: WriteBuf,
    /// Bytes were written since the last flush.
    unflushed: bool,
    /// Bounds how long a write may make no progress.
    write_timer: Option<Timer>,
    /// Bounds how long replies are awaited once every handle is gone.
    drain_timer: Option<Timer>,
    /// The deadline of the oldest reply awaited, for the whole connection.
    replies: ReplyWatch<Instant>,
    /// Wakes the driver at that deadline; one timer for every handle.
    reply_timer: Watchdog,
    /// The receive low-water mark as last set.
    low_water: ReadLowWater,
    /// Sets the mark on the stream: only for the connect helpers' sockets,
    /// since a caller's stream (TLS, a tunnel) may not be a socket.
    update_low_water: Option<UpdateLowWater<S>>,
    /// Tells how much of what was written is still on its way: only the
    /// connect helpers' sockets can.
    unsent_bytes: Option<UnsentBytes<S>>,
}

impl<S> fmt::Debug for Driver<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Driver")
            .field("running", &self.io.is_some())
            .field("unwritten", &self.out.remaining())
            .finish_non_exhaustive()
    }
}

impl<S> Drop for Driver<S> {
    /// A driver dropped before it finished (its executor shut down, say)
    /// fails the calls in flight at once, rather than leave them to time
    /// out.
    fn drop(&mut self) {
        if self.io.is_some() {
            self.shared.lock().fail(ProtocolError::Abandoned, None);
        }
    }
}

/// What one round of the driver achieved.
enum Round {
    /// Something moved; go again.
    Progress,
    /// Everything waits on I/O, a timer or a caller; wakers are registered.
    Idle,
    /// Replies were handed out and the read found all there was: let their
    /// callers run (and queue their next commands) before reading again.
    Yield,
    /// The driver is done.
    Finished,
}

impl<S> Future for Driver<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        for _ in 0..DRIVER_BUDGET {
            match this.round(cx) {
                Round::Progress => {}
                Round::Idle => return Poll::Pending,
                Round::Yield => {
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                Round::Finished => {
                    this.io = None;
                    return Poll::Ready(());
                }
            }
        }
        // Out of budget with work left: let other tasks run, then continue.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl<S> Driver<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn round(&mut self, cx: &mut Context<'_>) -> Round {
        let Some(io) = self.io.as_mut() else {
            return Round::Finished;
        };
        let mut progress = false;
        let mut yield_after = false;

        // Take what callers queued, or learn that there is nothing more to do.
        {
            let mut inner = self.shared.lock();
            if inner.mux.is_stopping() {
                return Round::Finished;
            }
            if !self.out.has_remaining() {
                inner.mux.take_output(&mut self.out);
                if self.out.has_remaining() {
                    self.unflushed = true;
                    // `quit` completes without bytes from the server, as soon
                    // as the replies before it are in: maybe already.
                    if inner.dispatch(&mut self.rbuf).is_err() {
                        return Round::Finished;
                    }
                    self.replies.update(
                        inner.mux.connection(),
                        &self.shared.options,
                        deadline_after,
                    );
                } else if inner.handles_gone && !self.unflushed {
                    if inner.mux.is_idle() {
                        return Round::Finished;
                    }
                    // Replies still due are read before closing: closing
                    // with replies unread would reset the connection, and
                    // the server could lose commands it has not read yet.
                    let timeout = self.shared.options.read_timeout;
                    let timer = self
                        .drain_timer
                        .get_or_insert_with(|| Timer::after(timeout));
                    if Pin::new(timer).poll(cx).is_ready() {
                        inner.fail(ProtocolError::Abandoned, Some(Error::Timeout(timeout)));
                        return Round::Finished;
                    }
                }
                // Commands taken but not yet written count as due: they
                // are written below, and only a server that stopped
                // reading could hold their replies back, which the
                // write timeout catches.
                if let Some(update) = self.update_low_water {
                    if let Err(error) = update(io, &mut self.low_water, inner.mux.connection()) {
                        // A socket left asking for more than will
                        // come would stall until the timeout.
                        inner.fail(ProtocolError::Abandoned, Some(Error::Io(error)));
                        return Round::Finished;
                    }
                }
                if !inner
                    .driver
                    .as_ref()
                    .is_some_and(|w| w.will_wake(cx.waker()))
                {
                    inner.driver = Some(cx.waker().clone());
                }
            }
        }

        // Write (and flush) what was taken.
        if self.out.has_remaining() || self.unflushed {
            let before = self.out.remaining();
            match poll_send(io, &mut self.out, cx) {
                Poll::Ready(Ok(())) => {
                    self.unflushed = false;
                    self.write_timer = None;
                    progress = true;
                }
                Poll::Ready(Err(error)) => {
                    self.shared
                        .lock()
                        .fail(ProtocolError::Abandoned, Some(Error::Io(error)));
                    return Round::Finished;
                }
                Poll::Pending if self.out.remaining() < before => {
                    self.write_timer = None;
                    progress = true;
                }
                Poll::Pending => {
                    let timeout = self.shared.options.write_timeout;
                    let timer = self
                        .write_timer
                        .get_or_insert_with(|| Timer::after(timeout));
                    if Pin::new(timer).poll(cx).is_ready() {
                        self.shared
                            .lock()
                            .fail(ProtocolError::Abandoned, Some(Error::Timeout(timeout)));
                        return Round::Finished;
                    }
                }
            }
        }

        // Read whenever the stream may have something: replies, but also an
        // EOF or garbage while idle. A wake from a caller alone reads nothing.
        let mut read = self
            .readiness
            .poll_read_into(&mut self.scratch, io, cx, &mut self.rbuf);
        if read.is_pending()
            && self
                .replies
                .deadline()
                .is_some_and(|deadline| deadline <= Instant::now())
        {
            // The oldest reply may be in, held below the receive mark,
            // which wakes no read: a read now, past the readiness, decides.
            // Nothing there is late indeed, unless its command's bytes
            // still leave (below): then the driver goes on, and only the
            // stream can wake it for a reply that comes before the next
            // deadline, so this read too leaves the tracker's waker with
            // the stream (a read polled with a no-op waker left a reply in
            // a smol socket until that deadline).
            read = self
                .readiness
                .poll_read_now(&mut self.scratch, io, cx, &mut self.rbuf);
        }
        match read {
            Poll::Ready(Ok(0)) => {
                self.shared
                    .lock()
                    .mux
                    .end_of_stream(&self.rbuf, ReplyTicket::deliver);
                return Round::Finished;
            }
            Poll::Ready(Ok(_)) => {
                let mut inner = self.shared.lock();
                if inner.dispatch(&mut self.rbuf).is_err() {
                    return Round::Finished;
                }
                self.replies
                    .update(inner.mux.connection(), &self.shared.options, deadline_after);
                progress = true;
                yield_after = self.readiness.last_read_was_short();
            }
            Poll::Ready(Err(error)) if error.kind() == io::ErrorKind::Interrupted => {
                progress = true;
            }
            Poll::Ready(Err(error)) => {
                self.shared
                    .lock()
                    .fail(ProtocolError::Abandoned, Some(Error::Io(error)));
                return Round::Finished;
            }
            Poll::Pending => {}
        }

        // A reply later than its deadline fails the connection, even while
        // callers keep the writes going.
        let mut late = self
            .replies
            .deadline()
            .is_some_and(|deadline| self.reply_timer.poll_passed(cx, deadline).is_ready());
        // The server cannot answer before it has the command: while its
        // bytes still leave, the wait starts afresh.
        if late {
            // Bytes written after it are not its own; its own may not all
            // be written yet.
            let (behind, unwritten) = {
                let inner = self.shared.lock();
                (
                    inner.mux.connection().bytes_behind_next(),
                    inner.mux.output_len() + self.out.remaining(),
                )
            };
            let unsent = proto::reply_watch::own_unsent(
                self.unsent_bytes.and_then(|unsent| unsent(io)),
                behind,
                unwritten,
            );
            if self.replies.extend_while_sending(unsent, deadline_after) {
                late = false;
                progress = true;
            }
        }
        if late {
            let late = Error::Timeout(self.replies.limit().unwrap_or_default());
            self.shared
                .lock()
                .fail(ProtocolError::Abandoned, Some(late));
            return Round::Finished;
        }
        if yield_after {
            Round::Yield
        } else if progress {
            Round::Progress
        } else {
            Round::Idle
        }
    }
}
