//! The reconnecting client of the async adapters, written once over the
//! connection type each adapter brings.
//!
//! [`Reconnecting<C>`] owns one connection `C` (the tokio or futures-io
//! `Client`) and a [`Reconnector`]; [`crate::reconnect::run`] decides what
//! happens when the connection breaks. The adapter implements
//! [`Reconnect`] for its `Client`, which is all the I/O there is, and
//! exports `Reconnecting<Client>` as its `ReconnectingClient`.

use core::future::Future;
use core::time::Duration;

use crate::api::AsyncExecute;
use crate::cmd::Request;
use crate::connection::{Session, Token};
use crate::endpoint::Endpoint;
use crate::error::{CommandError, Error};
use crate::lease::LeaseTracker;
use crate::options::Options;
use crate::reconnect::{Link, Reconnector};
use crate::response::Response;
use crate::retry::ReconnectPolicy;

/// What a [`Reconnecting`] client needs of one connection: opening it,
/// sending on it, and the runtime's timer. Each async adapter implements
/// it for its `Client`.
pub trait Reconnect: Sized + Send {
    /// Opens a connection to `endpoint`.
    fn open(
        endpoint: &Endpoint,
        options: Options,
    ) -> impl Future<Output = Result<Self, Error>> + Send;

    /// Replaces this connection with a new one to the same endpoint and
    /// restores the tube in use and the watch list the server confirmed.
    fn reopen(&mut self) -> impl Future<Output = Result<(), Error>> + Send;

    /// Whether commands can still be sent.
    fn is_open(&self) -> bool;

    /// The session as the server confirmed it.
    fn session(&self) -> &Session;

    /// Closes the connection now.
    fn close(&mut self);

    /// Closes an idle connection that the server has closed meanwhile (a
    /// restart, an idle timeout), so that the next command goes out on a
    /// new connection instead of into a dead one. Cheap when nothing
    /// happened.
    fn close_if_peer_left(&mut self);

    /// Queues `request` without waiting for its reply.
    fn begin<R: Request>(&mut self, request: &R) -> Result<Token, Error>;

    /// Writes what is queued and waits for the reply to `token`.
    fn finish(&mut self, token: Token) -> impl Future<Output = Result<Response, Error>> + Send;

    /// Waits `delay` on the adapter's runtime (the backoff).
    fn sleep(delay: Duration) -> impl Future<Output = ()> + Send;

    /// Something worth logging happened; the tokio adapter turns it into a
    /// `tracing` event. Does nothing by default.
    fn observe(event: ReconnectEvent<'_>) {
        let _ = event;
    }
}

/// What a [`Reconnecting`] client reports to [`Reconnect::observe`].
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum ReconnectEvent<'a> {
    /// The connection broke under a command.
    Broke(&'a Error),
    /// Waiting before the next connection attempt.
    Backoff {
        /// How long.
        delay: Duration,
        /// Consecutive failures so far.
        failures: u32,
    },
    /// A connection attempt failed.
    ConnectFailed(&'a Error),
    /// The connection was replaced; its session is restored.
    Reconnected {
        /// The new connection's generation.
        generation: u64,
    },
}

/// A client that reconnects, with bounded exponential backoff, when its
/// connection breaks, and restores the tube in use and the watch list
/// before any other command on the new connection. Each async adapter
/// exports it over its own `Client` as `ReconnectingClient`, with examples.
///
/// It has all 25 commands ([`crate::AsyncCommands`]). What happens to a
/// command whose connection broke follows [`crate::retry`]:
/// - commands that never reached the server, idempotent commands (`use`,
///   `watch`, `ignore`, peeks, stats, lists) and reserves are sent again on
///   the new connection, transparently;
/// - anything else whose reply was lost (`put` by default, `delete`,
///   `release`, `bury`, `touch`, `kick`, ...) fails with
///   [`Error::Unconfirmed`] (`outcome_unknown()` is true): for a `put`, the
///   job may exist. The connection is replaced for the next call. Opt in
///   to re-sending puts with [`crate::retry::PutRetry::AtLeastOnce`]
///   (at-least-once: a job may then be created twice);
/// - `delete`, `release`, `bury` and `touch` of a job reserved on a lost
///   connection fail with [`Error::LeaseLost`] without being sent: the
///   server released that job when the connection closed, and acting on it
///   from the new connection could delete a job another worker now holds.
///
/// Errors that are not about the connection (`NOT_FOUND`, `DRAINING`, ...)
/// are returned as they are, and never cause a reconnect: a draining
/// server is not hammered with new connections.
///
/// Each call makes at most [`ReconnectPolicy::max_attempts`] attempts
/// (failed connects, or connections that broke under a command that was
/// then re-sent) before it returns the last error; the next call starts
/// again. Delays between attempts grow until a command succeeds.
///
/// Before each command, a connection the server closed while it was idle
/// is replaced ([`Reconnect::close_if_peer_left`]), so the first `put`
/// after a server restart is confirmed rather than reported unknown.
#[derive(Debug)]
pub struct Reconnecting<C> {
    endpoint: Endpoint,
    options: Options,
    /// The current connection, or the last one (kept, broken, so its
    /// session can be restored); `None` before the first connection.
    client: Option<C>,
    /// Policy, leases, failures and reconnects.
    state: Reconnector,
}

impl<C: Reconnect> Reconnecting<C> {
    /// Connects to `address` with default [`Options`] and the default
    /// [`ReconnectPolicy`] (at most 8 attempts per call).
    pub async fn connect(address: &str) -> Result<Self, Error> {
        Self::connect_with(address, Options::default(), ReconnectPolicy::default()).await
    }

    /// Connects to `address`, retrying as `policy` allows.
    pub async fn connect_with(
        address: &str,
        options: Options,
        policy: ReconnectPolicy,
    ) -> Result<Self, Error> {
        let mut client = Self::lazy(address.parse()?, options, policy);
        let mut attempts = 0;
        while let Err(error) = crate::reconnect::connect_once(&mut client).await {
            attempts += 1;
            if !client.state.retries_connect(&error, attempts) {
                return Err(error);
            }
        }
        Ok(client)
    }

    /// A client that connects when its first command runs.
    pub fn lazy(endpoint: Endpoint, options: Options, policy: ReconnectPolicy) -> Self {
        Self {
            endpoint,
            options,
            client: None,
            state: Reconnector::new(policy),
        }
    }

    /// The address this client connects to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The reconnect policy in force.
    pub fn policy(&self) -> &ReconnectPolicy {
        self.state.policy()
    }

    /// Whether a connection is open now (the next command may still find it
    /// dead, and then replaces it).
    pub fn is_connected(&self) -> bool {
        self.client.as_ref().is_some_and(C::is_open)
    }

    /// How many times the connection was replaced.
    pub fn reconnects(&self) -> u64 {
        self.state.reconnects()
    }

    /// The current connection's generation: 0 for the first, one more per
    /// reconnect. A job reserved on an earlier generation is lost.
    pub fn generation(&self) -> u64 {
        self.state.generation()
    }

    /// The jobs held on the current connection and those lost with earlier
    /// ones.
    pub fn leases(&self) -> &LeaseTracker {
        self.state.leases()
    }

    /// The tube in use and the watch list as the server last confirmed
    /// them: what a new connection gets back. `None` before the first
    /// connection.
    pub fn session(&self) -> Option<&Session> {
        self.client.as_ref().map(C::session)
    }

    /// Closes the current connection now. The server releases every job it
    /// held (their leases are lost); the next command reconnects.
    pub fn disconnect(&mut self) {
        if let Some(client) = self.client.as_mut() {
            client.close();
        }
        self.state.connection_lost();
    }

    /// Replaces the connection now, with one attempt (after the backoff
    /// delay if the last attempts failed).
    pub async fn reconnect(&mut self) -> Result<(), Error> {
        self.disconnect();
        crate::reconnect::connect_once(self).await
    }

    /// Runs `request` through the retry loop, after making sure an idle
    /// connection was not closed by the server meanwhile.
    async fn run<R: Request>(&mut self, request: R) -> Result<R::Output, Error> {
        if let Some(client) = self.client.as_mut() {
            client.close_if_peer_left();
        }
        crate::reconnect::run(self, request, true).await
    }
}

impl<C: Reconnect> Link for Reconnecting<C> {
    fn state(&mut self) -> &mut Reconnector {
        &mut self.state
    }

    fn is_open(&self) -> bool {
        self.is_connected()
    }

    async fn connect(&mut self) -> Result<bool, Error> {
        let connected = match self.client.as_mut() {
            Some(old) => old.reopen().await.map(|()| true),
            None => C::open(&self.endpoint, self.options).await.map(|client| {
                self.client = Some(client);
                false
            }),
        };
        match &connected {
            Ok(true) => C::observe(ReconnectEvent::Reconnected {
                generation: self.state.generation() + 1,
            }),
            Ok(false) => {}
            Err(error) => C::observe(ReconnectEvent::ConnectFailed(error)),
        }
        connected
    }

    async fn pause(&mut self, delay: Duration) {
        C::observe(ReconnectEvent::Backoff {
            delay,
            failures: self.state.failures(),
        });
        C::sleep(delay).await;
    }

    fn begin<R: Request>(&mut self, request: &R) -> Result<Token, Error> {
        match self.client.as_mut() {
            Some(client) => client.begin(request),
            None => Err(CommandError::Closed.into()),
        }
    }

    async fn finish(&mut self, token: Token) -> Result<Response, Error> {
        match self.client.as_mut() {
            Some(client) => client.finish(token).await,
            None => Err(CommandError::Closed.into()),
        }
    }

    fn on_break(&mut self, error: &Error) {
        C::observe(ReconnectEvent::Broke(error));
    }
}

impl<C: Reconnect> AsyncExecute for Reconnecting<C> {
    fn execute<R>(&mut self, request: R) -> impl Future<Output = Result<R::Output, Error>> + Send
    where
        R: Request + Send,
        R::Output: Send,
    {
        self.run(request)
    }
}
