//! One connection shared by many tasks: commands from every task are
//! pipelined in FIFO order by a driver task.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use proto::{
    AsyncExecute, CommandError, Connection, Endpoint, Error, Options, ProtocolError, ReplyTimeout,
    Request, Response, State, Tube, WriteBuf, cmd,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;

use crate::stream::Stream;

const READ_SIZE: usize = 64 * 1024;

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
/// this handle's. Before a command that acts on the tube in use (`put`,
/// `kick`, the state peeks, `list-tube-used`), the handle sends `use` if the
/// connection is on another tube, in the same pipeline, so a task's jobs
/// never land in a tube another task chose. The watch list, by contrast,
/// is the connection's.
///
/// # No waiting reserves
/// beanstalkd answers nothing else on a connection while a `reserve`
/// waits, so a waiting reserve would stall every task. A shared handle
/// refuses `reserve` and `reserve-with-timeout` above 0 with
/// [`CommandError::WouldBlockShared`]; reserve on a [`crate::Client`] of its
/// own. `reserve-with-timeout 0` (answered at once) is allowed.
///
/// # Cancellation and failures
/// Dropping a call's future is always safe: its reply is read in order and
/// discarded. A timeout, I/O error or protocol violation closes the
/// connection and fails every call in flight.
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
    shared: Arc<Shared>,
    /// This handle's tube in use.
    tube: Tube,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<Inner>,
    /// Wakes the driver when there is something to write or to stop for.
    wake: Notify,
    options: Options,
    endpoint: Endpoint,
}

#[derive(Debug)]
struct Inner {
    conn: Connection,
    wbuf: WriteBuf,
    /// One entry per command in flight, in the same order as the
    /// connection's queue.
    waiters: VecDeque<Waiter>,
    /// The tube the connection uses once everything sent so far is done.
    tube_sent: Tube,
    /// Set when the driver must stop.
    stopping: bool,
}

#[derive(Debug)]
enum Waiter {
    Caller(oneshot::Sender<Result<Response, Error>>),
    /// A `use` the handle inserted; its reply is checked, not delivered.
    TubeSwitch,
}

impl SharedClient {
    /// Connects to `address` with default [`Options`] and starts the
    /// driver task on the current tokio runtime.
    pub async fn connect(address: &str) -> Result<Self, Error> {
        Self::connect_with(address, Options::default()).await
    }

    /// Connects with the given timeouts and limits.
    pub async fn connect_with(address: &str, options: Options) -> Result<Self, Error> {
        Self::connect_endpoint(&address.parse()?, options).await
    }

    /// Connects to a parsed endpoint.
    pub async fn connect_endpoint(endpoint: &Endpoint, options: Options) -> Result<Self, Error> {
        let stream = Stream::connect(endpoint, options.connect_timeout).await?;
        let shared = Arc::new(Shared {
            state: Mutex::new(Inner {
                conn: Connection::new(options.config),
                wbuf: WriteBuf::new(),
                waiters: VecDeque::new(),
                tube_sent: Tube::DEFAULT,
                stopping: false,
            }),
            wake: Notify::new(),
            options,
            endpoint: endpoint.clone(),
        });
        tokio::spawn(drive(Arc::clone(&shared), stream));
        Ok(Self {
            shared,
            tube: Tube::DEFAULT,
        })
    }

    /// The address of the connection.
    pub fn endpoint(&self) -> &Endpoint {
        &self.shared.endpoint
    }

    /// This handle's tube in use.
    pub fn tube(&self) -> &Tube {
        &self.tube
    }

    /// Whether the connection can still be used.
    pub fn is_open(&self) -> bool {
        let inner = self.shared.lock();
        !inner.stopping && inner.conn.is_open()
    }

    /// Closes the connection: calls in flight fail, later calls fail.
    pub fn close(&self) {
        self.shared.fail(ProtocolError::Abandoned);
    }

    async fn run<R: Request>(&mut self, request: R) -> Result<R::Output, Error> {
        let wait = request.reply_timeout();
        if matches!(wait, ReplyTimeout::Indefinite)
            || matches!(wait, ReplyTimeout::ServerWait(d) if !d.is_zero())
        {
            return Err(CommandError::WouldBlockShared.into());
        }
        let reply = self.enqueue(&request)?;
        self.shared.wake.notify_one();
        let limit = self.shared.options.reply_deadline(wait, None);
        let received = match limit {
            Some(limit) => match tokio::time::timeout(limit, reply).await {
                Ok(received) => received,
                Err(_) => {
                    self.shared.fail(ProtocolError::Abandoned);
                    return Err(Error::Timeout(limit));
                }
            },
            None => reply.await,
        };
        // A dropped sender means the driver stopped without answering.
        let response = received.unwrap_or(Err(Error::Protocol(ProtocolError::Abandoned)))?;
        R::from_response(response)
    }

    /// Encodes `request` (after a `use`, if this handle's tube differs from
    /// the connection's) and registers its waiter, all under one lock so
    /// no other task's command can come between.
    fn enqueue<R: Request>(
        &mut self,
        request: &R,
    ) -> Result<oneshot::Receiver<Result<Response, Error>>, Error> {
        let mut guard = self.shared.lock();
        let inner = &mut *guard;
        if inner.stopping {
            return Err(match inner.conn.state() {
                State::Broken(cause) => CommandError::Broken(cause),
                _ => CommandError::Closed,
            }
            .into());
        }
        if R::KIND.depends_on_tube_in_use() && inner.tube_sent != self.tube {
            inner
                .conn
                .send(&cmd::Use::new(&self.tube)?, &mut inner.wbuf)?;
            inner.waiters.push_back(Waiter::TubeSwitch);
            inner.tube_sent = self.tube.clone();
        }
        inner.conn.send(request, &mut inner.wbuf)?;
        if R::KIND == cmd::CommandKind::Use {
            if let Some(tube) = request.session_tube() {
                self.tube = tube.clone();
                inner.tube_sent = tube.clone();
            }
        }
        let (sender, receiver) = oneshot::channel();
        inner.waiters.push_back(Waiter::Caller(sender));
        Ok(receiver)
    }
}

impl AsyncExecute for SharedClient {
    fn execute<R>(&mut self, request: R) -> impl Future<Output = Result<R::Output, Error>> + Send
    where
        R: Request + Send,
        R::Output: Send,
    {
        self.run(request)
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves consistent data
        // (every update is a single push or pop), so keep going.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The server closed the connection cleanly (after `quit`).
    fn stop(&self) {
        self.lock().stopping = true;
    }

    /// Breaks the connection: every waiter fails and the driver stops.
    fn fail(&self, cause: ProtocolError) {
        let mut inner = self.lock();
        inner.conn.abandon();
        let cause = match inner.conn.state() {
            State::Broken(recorded) => recorded,
            _ => cause,
        };
        inner.stopping = true;
        for waiter in inner.waiters.drain(..) {
            if let Waiter::Caller(sender) = waiter {
                let _ = sender.send(Err(Error::Protocol(cause)));
            }
        }
        drop(inner);
        self.wake.notify_one();
    }
}

/// The driver: writes what callers encoded, reads replies and hands them
/// out in order, until the connection fails or every handle is gone.
async fn drive(shared: Arc<Shared>, stream: Stream) {
    let (mut reader, mut writer) = tokio::io::split(stream);
    let mut rbuf = BytesMut::with_capacity(READ_SIZE);
    let mut out = WriteBuf::new();
    let write_timeout = shared.options.write_timeout;
    loop {
        if !out.has_remaining() {
            let mut inner = shared.lock();
            if inner.stopping {
                break;
            }
            std::mem::swap(&mut inner.wbuf, &mut out);
        }
        // Only the handles and this task hold the state; with no handles
        // left nobody can send, so stop once everything sent is answered.
        if Arc::strong_count(&shared) == 1
            && !out.has_remaining()
            && shared.lock().waiters.is_empty()
        {
            break;
        }
        let write_deadline = Instant::now() + write_timeout;
        tokio::select! {
            read = read_some(&mut reader, &mut rbuf) => match read {
                Ok(0) => {
                    let eof = shared.lock().conn.handle_eof(&rbuf);
                    match eof {
                        Ok(()) => shared.stop(),
                        Err(cause) => shared.fail(cause),
                    }
                    break;
                }
                Ok(_) => {
                    if let Err(cause) = dispatch(&shared, &mut rbuf) {
                        shared.fail(cause);
                        break;
                    }
                }
                Err(_) => {
                    shared.fail(ProtocolError::Abandoned);
                    break;
                }
            },
            written = write_some(&mut writer, &out), if out.has_remaining() => match written {
                Ok(n) => out.advance(n),
                Err(_) => {
                    shared.fail(ProtocolError::Abandoned);
                    break;
                }
            },
            () = tokio::time::sleep_until(write_deadline), if out.has_remaining() => {
                shared.fail(ProtocolError::Abandoned);
                break;
            }
            () = shared.wake.notified(), if !out.has_remaining() => {}
            () = idle_check(), if !out.has_remaining() => {}
        }
    }
}

/// Wakes the driver now and then so it notices that every handle is gone.
async fn idle_check() {
    tokio::time::sleep(Duration::from_millis(500)).await;
}

async fn read_some(reader: &mut ReadHalf<Stream>, rbuf: &mut BytesMut) -> std::io::Result<usize> {
    rbuf.reserve(READ_SIZE);
    reader.read_buf(rbuf).await
}

async fn write_some(writer: &mut WriteHalf<Stream>, out: &WriteBuf) -> std::io::Result<usize> {
    let mut slices = [std::io::IoSlice::new(&[]); 8];
    let count = out.chunks_vectored(&mut slices);
    writer
        .write_vectored(slices.get(..count).unwrap_or_default())
        .await
}

/// Hands every complete reply in `rbuf` to its waiter.
fn dispatch(shared: &Shared, rbuf: &mut BytesMut) -> Result<(), ProtocolError> {
    let mut inner = shared.lock();
    let inner = &mut *inner;
    while let Some((_, response)) = inner.conn.poll_response(rbuf)? {
        match inner.waiters.pop_front() {
            // The caller may have stopped waiting; its reply is dropped in order.
            Some(Waiter::Caller(sender)) => drop(sender.send(Ok(response))),
            Some(Waiter::TubeSwitch) if matches!(response, Response::Using(_)) => {}
            // The `use` before a put failed: the put may be in the wrong tube.
            Some(Waiter::TubeSwitch) => {
                return Err(ProtocolError::UnexpectedReply {
                    command: "use",
                    reply: response.word().unwrap_or(proto::ReplyWord::Using),
                });
            }
            None => return Err(ProtocolError::Abandoned),
        }
    }
    Ok(())
}
