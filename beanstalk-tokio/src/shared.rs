//! One connection shared by many tasks: commands from every task are
//! pipelined in FIFO order by a driver task.

use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use proto::mux::{Mux, ReplySlot, ReplyTicket};
use proto::options::checked_timeout;
use proto::read_low_water::ReadLowWater;
use proto::read_size::{MIN_READ, ReadSize};
use proto::reply_watch::{ReplyWatch, SendProgress, own_unsent};
use proto::{AsyncExecute, Endpoint, Error, Options, ProtocolError, Request, Tube, WriteBuf};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::stream::{ReadSide, Stream, WriteSide};
use crate::watchdog::{Watchdog, deadline_after};

/// The largest read: as many replies as a pipeline of small commands
/// brings in one wake-up.
const MAX_READ: usize = 64 * 1024;

/// A cheap, cloneable handle to one connection that many tasks use at once.
///
/// Each call encodes its command straight into the connection's write
/// buffer and waits for its own reply; a driver task writes whatever has
/// accumulated in one go and hands replies back in order. So concurrent
/// tasks get pipelining without batching by hand.
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
/// timer of its own.
///
/// # Cancellation and failures
/// Dropping a call's future is always safe: its reply is read in order and
/// discarded. A timeout, I/O error or protocol violation closes the
/// connection and fails every call in flight. So does the end of the
/// runtime that runs the driver (the one the handle was connected in):
/// handles kept past it get connection errors, never a wait.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), beanstalk_tokio::Error> {
/// # let server = beanstalk_test_support::Server::start();
/// use beanstalk_tokio::{AsyncCommands, PutOptions, SharedClient};
///
/// let client = SharedClient::connect(&server.url()).await?;
/// let mut tasks = Vec::new();
/// for task in 0..8 {
///     let mut client = client.clone();
///     tasks.push(tokio::spawn(async move {
///         client.use_tube(format!("tube-{task}")).await?;
///         client.put(format!("from task {task}"), PutOptions::default()).await
///     }));
/// }
/// for task in tasks {
///     task.await.unwrap()?;
/// }
/// let mut client = client.clone();
/// assert_eq!(client.stats_tube("tube-3").await?.total_jobs, 1);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct SharedClient {
    handle: Arc<Handle>,
    /// This handle's tube in use.
    tube: Tube,
    /// The timer of this handle's one-call timeouts.
    call_timer: CallTimer,
    /// Where this handle's replies land (a clone gets its own).
    reply: ReplySlot,
}

/// The timer of a handle's [`SharedClient::with_timeout`] calls: made on
/// first use (it needs the runtime), and never shared with a clone (a
/// timer belongs to the task that polls it).
#[derive(Debug, Default)]
struct CallTimer(Option<Watchdog>);

impl Clone for CallTimer {
    fn clone(&self) -> Self {
        Self(None)
    }
}

/// Shared by every clone of a [`SharedClient`] and dropped with the last
/// one, which tells the driver that no more commands can come.
#[derive(Debug)]
struct Handle(Arc<Shared>);

impl Drop for Handle {
    fn drop(&mut self) {
        self.0.handles_gone.store(true, Ordering::Release);
        self.0.wake.notify_one();
    }
}

#[derive(Debug)]
struct Shared {
    mux: Mutex<Mux<ReplyTicket>>,
    /// Wakes the driver when there is something to write or to stop for.
    wake: Notify,
    handles_gone: AtomicBool,
    options: Options,
    endpoint: Endpoint,
}

impl SharedClient {
    /// Connects to `address` with default [`Options`] and starts the
    /// driver task on the current tokio runtime.
    pub async fn connect(address: &str) -> Result<Self, Error> {
        Self::connect_with(address, Options::default()).await
    }

    /// Connects to `BEANSTALKD_URL`, or `127.0.0.1:11300` when it is unset.
    pub async fn connect_default() -> Result<Self, Error> {
        Self::connect_endpoint(&Endpoint::from_env()?, Options::default()).await
    }

    /// Connects with the given timeouts and limits.
    pub async fn connect_with(address: &str, options: Options) -> Result<Self, Error> {
        Self::connect_endpoint(&address.parse()?, options).await
    }

    /// Connects to a parsed endpoint.
    pub async fn connect_endpoint(endpoint: &Endpoint, options: Options) -> Result<Self, Error> {
        let options = options.checked()?;
        let stream = Stream::connect(endpoint, options.connect_timeout).await?;
        let shared = Arc::new(Shared {
            mux: Mutex::new(Mux::new(options.config)),
            wake: Notify::new(),
            handles_gone: AtomicBool::new(false),
            options,
            endpoint: endpoint.clone(),
        });
        tokio::spawn(drive(Arc::clone(&shared), stream));
        Ok(Self {
            handle: Arc::new(Handle(shared)),
            tube: Tube::DEFAULT,
            call_timer: CallTimer::default(),
            reply: ReplySlot::default(),
        })
    }

    /// The address of the connection.
    pub fn endpoint(&self) -> &Endpoint {
        &self.shared().endpoint
    }

    /// This handle's tube in use.
    pub fn tube(&self) -> &Tube {
        &self.tube
    }

    /// Whether the connection can still be used.
    pub fn is_open(&self) -> bool {
        self.shared().lock().is_open()
    }

    /// Closes the connection: calls in flight fail, later calls fail.
    pub fn close(&self) {
        self.shared().fail(None);
    }

    /// Runs the next command through this handle with `timeout` instead of
    /// the read timeout (added to the server-side wait of
    /// `reserve-with-timeout`). As with any timeout, running out closes the
    /// connection for every handle. The connection's own deadline still
    /// holds, so this can shorten a call's wait, not lengthen it.
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
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), beanstalk_tokio::Error> {
    /// # let server = beanstalk_test_support::Server::start();
    /// use std::time::Duration;
    /// use beanstalk_tokio::{AsyncCommands, SharedClient};
    ///
    /// let mut client = SharedClient::connect(&server.url()).await?;
    /// let stats = client.with_timeout(Duration::from_millis(200)).stats().await?;
    /// assert!(stats.uptime < 60);
    /// # Ok(())
    /// # }
    /// ```
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
        // A zero timeout is refused before anything is encoded.
        let explicit = explicit.map(checked_timeout).transpose()?;
        let (waiter, reply) = self.reply.begin();
        // Encoding under the lock keeps the handle's `use` and its command together.
        let due = {
            let mut mux = self.handle.0.lock();
            mux.enqueue(&self.tube, &request, waiter)?;
            mux.output_due()
        };
        // Output held for the next replies is taken when they come, without a wake.
        if due {
            self.shared().wake.notify_one();
        }
        // The driver enforces the reply deadline (see "Timeouts" above); only
        // a one-call override needs a timer here. A driver that stops
        // without answering abandons the call.
        let response = match explicit.map(|t| request.reply_timeout().resolve_explicit(t)) {
            None => reply.await,
            Some(limit) => {
                let watchdog = self.call_timer.0.get_or_insert_with(Watchdog::new);
                match watchdog.until(deadline_after(limit), reply).await {
                    Some(received) => received,
                    None => {
                        self.handle.0.fail(None);
                        return Err(Error::Timeout(limit));
                    }
                }
            }
        };
        proto::mux::follow_use(&mut self.tube, &response);
        R::from_response(response?)
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

impl AsyncExecute for SharedClient {
    fn execute<R>(&mut self, request: R) -> impl Future<Output = Result<R::Output, Error>> + Send
    where
        R: Request + Send,
        R::Output: Send,
    {
        self.run(request, None)
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Mux<ReplyTicket>> {
        // Every update under the lock is a single push, pop or swap, so the
        // state is consistent even if a holder panicked.
        self.mux.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Breaks the connection: the oldest caller gets `first` if given, the
    /// others the recorded cause, and the driver stops.
    fn fail(&self, first: Option<Error>) {
        self.lock()
            .fail(ProtocolError::Abandoned, first, ReplyTicket::deliver);
        self.wake.notify_one();
    }
}

/// The driver: writes what callers encoded, reads replies and hands them
/// out in order, until the connection fails or closes, or every handle is
/// gone and the replies still due have come in.
async fn drive(shared: Arc<Shared>, mut stream: Stream) {
    // Dropped unfinished (its runtime shut down, say), the driver fails
    // the calls in flight and every later one, which would otherwise wait
    // for it forever: the reply deadlines are its to enforce.
    let _stop = StopOnDrop(&shared);
    let (mut reader, mut writer) = stream.split();
    let mut low_water = ReadLowWater::default();
    // Reads follow what arrives (see `proto::read_size`): callers hold
    // slices of this buffer as job bodies, and a fixed large reserve would
    // allocate that much afresh for every read while they do.
    let mut rbuf = BytesMut::with_capacity(MIN_READ);
    let mut read_size = ReadSize::new(MAX_READ);
    let mut out = WriteBuf::new();
    let options = shared.options;
    let mut replies = ReplyWatch::<Instant>::default();
    // The current write must progress by then.
    let mut write_deadline = None;
    // Whether a full send buffer still drains while the write waits.
    let mut draining = SendProgress::default();
    // Once every handle is gone, replies still due are awaited this long.
    let mut drain_deadline = None;
    let mut timer = Watchdog::new();
    // One waiter for callers' wake-ups, kept from turn to turn: a new
    // `Notified` each turn joined and left the waiter list (a lock each)
    // on every turn that something else woke.
    let mut woken = pin!(shared.wake.notified());
    loop {
        if !out.has_remaining() {
            let mut mux = shared.lock();
            if mux.is_stopping() {
                break;
            }
            mux.take_output(&mut out);
            if out.has_remaining() {
                write_deadline = deadline_after(options.write_timeout);
                // `quit` completes without bytes from the server: maybe now.
                if mux.dispatch(&mut rbuf, ReplyTicket::deliver).is_err() {
                    break;
                }
            }
            replies.update(mux.connection(), &options, deadline_after);
            // Commands taken but not yet written count as due: the write
            // below runs alongside the read, and only a server that stopped
            // reading could hold their replies back, which the write
            // timeout catches.
            if let Err(error) = reader.update_read_low_water(&mut low_water, mux.connection()) {
                // A socket left asking for more than will come would
                // stall until the timeout: give it up now instead.
                mux.fail(
                    ProtocolError::Abandoned,
                    Some(Error::Io(error)),
                    ReplyTicket::deliver,
                );
                break;
            }
            if shared.handles_gone.load(Ordering::Acquire) && !out.has_remaining() {
                if mux.is_idle() {
                    break;
                }
                if drain_deadline.is_none() {
                    drain_deadline = deadline_after(options.read_timeout);
                }
            }
        }
        let writing = write_deadline.filter(|_| out.has_remaining());
        let next = [writing, replies.deadline(), drain_deadline]
            .into_iter()
            .flatten()
            .min();
        tokio::select! {
            read = read_some(&mut reader, &mut rbuf, read_size.get()) => {
                if let Ok(n) = read {
                    read_size.record(n);
                }
                if !hand_out(&shared, read, &mut rbuf, &mut replies) {
                    break;
                }
            }
            written = write_some(&mut writer, &out), if out.has_remaining() => match written {
                Ok(n) => {
                    out.advance(n);
                    write_deadline = deadline_after(options.write_timeout);
                    draining = SendProgress::default();
                }
                Err(error) => {
                    shared.fail(Some(Error::Io(error)));
                    break;
                }
            },
            () = timer.wait_until(next), if next.is_some() => {
                let now = Instant::now();
                // The oldest reply may be in, held below the receive mark,
                // which wakes no read: what is there decides.
                if replies.deadline().is_some_and(|at| at <= now) {
                    match reader.read_held(&mut rbuf) {
                        Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
                        held => {
                            if !hand_out(&shared, held, &mut rbuf, &mut replies) {
                                break;
                            }
                        }
                    }
                }
                let late = if writing.is_some_and(|at| at <= now) {
                    // A writer is woken only once a good part of a full
                    // send buffer drained, which a slow link takes longer
                    // than the timeout to do: while what the kernel holds
                    // shrinks, the write is moving, and waits again. (A
                    // stuck one fails a timeout later: the first count has
                    // nothing to compare with.)
                    if draining.still_sending(own_unsent(reader.unsent_bytes(), 0, 0)) {
                        write_deadline = deadline_after(options.write_timeout);
                        None
                    } else {
                        Some(options.write_timeout)
                    }
                } else if replies.deadline().is_some_and(|at| at <= now)
                    // The server cannot answer before it has the command:
                    // while its bytes still leave, the wait starts afresh.
                    // (Bytes written after it are not its own; its own may
                    // not all be written yet.)
                    && !replies.extend_while_sending(
                        {
                            // The syscalls before the lock callers wait on.
                            let unsent = reader.unsent_bytes();
                            let mux = shared.lock();
                            own_unsent(
                                unsent,
                                mux.connection().bytes_behind_next(),
                                mux.output_len() + out.remaining(),
                            )
                        },
                        deadline_after,
                    )
                {
                    replies.limit()
                } else if drain_deadline.is_some_and(|at| at <= now) {
                    Some(options.read_timeout)
                } else {
                    None // armed for an earlier deadline: look again
                };
                if let Some(limit) = late {
                    shared.fail(Some(Error::Timeout(limit)));
                    break;
                }
            }
            () = woken.as_mut(), if !out.has_remaining() => {
                woken.set(shared.wake.notified());
            }
        }
    }
}

/// Stops the mux when the driver ends, however it ends.
struct StopOnDrop<'a>(&'a Shared);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        let mut mux = self.0.lock();
        if !mux.is_stopping() {
            mux.fail(ProtocolError::Abandoned, None, ReplyTicket::deliver);
        }
    }
}

/// Hands out the replies a read completed, or ends the connection on its
/// end or error. Returns whether the driver goes on.
fn hand_out(
    shared: &Shared,
    read: std::io::Result<usize>,
    rbuf: &mut BytesMut,
    replies: &mut ReplyWatch<Instant>,
) -> bool {
    let mut mux = shared.lock();
    match read {
        Ok(0) => {
            mux.end_of_stream(rbuf, ReplyTicket::deliver);
            false
        }
        Ok(_) => {
            if mux.dispatch(rbuf, ReplyTicket::deliver).is_err() {
                return false;
            }
            replies.update(mux.connection(), &shared.options, deadline_after);
            true
        }
        Err(error) => {
            mux.fail(
                ProtocolError::Abandoned,
                Some(Error::Io(error)),
                ReplyTicket::deliver,
            );
            false
        }
    }
}

async fn read_some(
    reader: &mut ReadSide<'_>,
    rbuf: &mut BytesMut,
    size: usize,
) -> std::io::Result<usize> {
    rbuf.reserve(size);
    reader.read_buf(rbuf).await
}

async fn write_some(writer: &mut WriteSide<'_>, out: &WriteBuf) -> std::io::Result<usize> {
    if out.chunk_count() == 1 {
        // One chunk (everything copied) is a plain write, which skips the
        // kernel's iovec import.
        return writer.write(out.chunk()).await;
    }
    let mut slices = [std::io::IoSlice::new(&[]); 8];
    let count = out.chunks_vectored(&mut slices);
    writer
        .write_vectored(slices.get(..count).unwrap_or_default())
        .await
}
