//! A client that replaces its connection when it breaks.

use std::time::Duration;

use proto::api::now_or_never;
use proto::lease::LeaseTracker;
use proto::reconnect::{Link, Reconnector};
use proto::retry::ReconnectPolicy;
use proto::{CommandError, Endpoint, Error, Execute, Options, Request, Response, Session, Token};

use crate::client::{Client, Closer};
use crate::worker::Shutdown;

/// A command sent after the connection has been quiet this long first
/// checks that the server has not closed it meanwhile (a restart, an idle
/// timeout), so it goes out on a new connection instead of into a dead one
/// and coming back "outcome unknown". The check costs three syscalls, so a
/// busy connection skips it.
const IDLE_PROBE: Duration = Duration::from_millis(100);

/// A [`Client`] that reconnects, with bounded exponential backoff, when its
/// connection breaks, and restores the tube in use and the watch list
/// before any other command on the new connection.
///
/// The rules are those of the tokio adapter's `ReconnectingClient`, from
/// [`proto::retry`] and [`proto::lease`]:
/// - commands that never reached the server, idempotent commands and
///   reserves are sent again on the new connection;
/// - other commands whose reply was lost (`put` by default, `delete`,
///   `release`, `bury`, `touch`, ...) fail with [`Error::Unconfirmed`]:
///   for a `put`, the job may exist
///   ([`proto::retry::PutRetry::AtLeastOnce`] re-sends puts instead);
/// - `delete`, `release`, `bury` and `touch` of a job reserved on a lost
///   connection fail with [`Error::LeaseLost`], unsent;
/// - other errors (`NOT_FOUND`, `DRAINING`...) never cause a reconnect.
///
/// ```
/// # let mut server = beanstalk_test_support::Server::builder().binlog_temp().start();
/// use beanstalk_blocking::{Commands, PutOptions, ReconnectingClient};
///
/// let mut client = ReconnectingClient::connect(&server.url())?;
/// client.use_tube("emails")?;
/// server.restart(); // kill -9 and start again
/// // The first put on the dead connection may report an unknown outcome...
/// if let Err(error) = client.put("during", PutOptions::default()) {
///     assert!(error.outcome_unknown());
/// }
/// // ...then the connection is replaced, `use emails` restored first.
/// client.put("after", PutOptions::default())?;
/// assert_eq!(client.list_tube_used()?.as_str(), "emails");
/// # Ok::<(), beanstalk_blocking::Error>(())
/// ```
#[derive(Debug)]
pub struct ReconnectingClient {
    endpoint: Endpoint,
    options: Options,
    /// The current connection, or the last one (kept, broken, so its
    /// session can be restored); `None` before the first connection.
    client: Option<Client>,
    /// Policy, leases, failures and reconnects: the core's bookkeeping.
    state: Reconnector,
    /// Ends backoff waits early, for a worker shutting down.
    interrupt: Option<Shutdown>,
}

impl ReconnectingClient {
    /// Connects to `address` with default [`Options`] and the default
    /// [`ReconnectPolicy`] (at most 8 attempts per call).
    pub fn connect(address: &str) -> Result<Self, Error> {
        Self::connect_with(address, Options::default(), ReconnectPolicy::default())
    }

    /// Connects to `address`, retrying as `policy` allows.
    pub fn connect_with(
        address: &str,
        options: Options,
        policy: ReconnectPolicy,
    ) -> Result<Self, Error> {
        let mut client = Self::lazy(address.parse()?, options, policy);
        let mut attempts = 0;
        while let Err(error) = client.connect_once() {
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
            interrupt: None,
        }
    }

    pub(crate) fn interrupt_with(&mut self, shutdown: Shutdown) {
        self.interrupt = Some(shutdown);
    }

    /// The address this client connects to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The reconnect policy in force.
    pub fn policy(&self) -> &ReconnectPolicy {
        self.state.policy()
    }

    /// Whether a connection is open now.
    pub fn is_connected(&self) -> bool {
        self.client.as_ref().is_some_and(Client::is_open)
    }

    /// How many times the connection was replaced.
    pub fn reconnects(&self) -> u64 {
        self.state.reconnects()
    }

    /// The current connection's generation: 0 for the first, one more per
    /// reconnect.
    pub fn generation(&self) -> u64 {
        self.state.generation()
    }

    /// The jobs held on the current connection and those lost with earlier
    /// ones.
    pub fn leases(&self) -> &LeaseTracker {
        self.state.leases()
    }

    /// The tube in use and the watch list a new connection gets back.
    pub fn session(&self) -> Option<&Session> {
        self.client
            .as_ref()
            .map(|client| client.connection().session())
    }

    /// Closes the current connection now; the server releases every job it
    /// held. The next command reconnects.
    pub fn disconnect(&mut self) {
        if let Some(client) = self.client.as_mut() {
            client.close();
        }
        self.state.connection_lost();
    }

    /// Replaces the connection now, with one attempt.
    pub fn reconnect(&mut self) -> Result<(), Error> {
        self.disconnect();
        self.connect_once()
    }

    /// Connects if there is no open connection, retrying as the policy
    /// allows.
    pub(crate) fn ensure_connected(&mut self) -> Result<(), Error> {
        let mut attempts = 0;
        while !self.is_connected() {
            if let Err(error) = self.connect_once() {
                attempts += 1;
                if !self.state.retries_connect(&error, attempts) || self.interrupted() {
                    return Err(error);
                }
            }
        }
        Ok(())
    }

    /// Closes the current connection from another thread.
    pub(crate) fn closer(&self) -> Option<Closer> {
        self.client.as_ref().and_then(|client| client.closer().ok())
    }

    /// One connection attempt, after the backoff the failures so far call
    /// for.
    fn connect_once(&mut self) -> Result<(), Error> {
        now_or_never(proto::reconnect::connect_once(self)).unwrap_or_else(pending)
    }

    /// Runs `request` through the core's retry loop, after making sure an
    /// idle connection was not closed by the server meanwhile; with
    /// `resend` false, only on the connection open now (see
    /// [`proto::reconnect::run`]): one found closed is an error, replaced
    /// on the next call.
    pub(crate) fn run<R: Request>(&mut self, request: R, resend: bool) -> Result<R::Output, Error> {
        if let Some(client) = self.client.as_mut() {
            client.close_if_peer_left(IDLE_PROBE);
        }
        now_or_never(proto::reconnect::run(self, request, resend)).unwrap_or_else(pending)
    }
}

/// The result when a step of the blocking client did not complete at once,
/// which cannot happen: every one of its futures is ready when created.
fn pending<T>() -> Result<T, Error> {
    Err(Error::Protocol(proto::ProtocolError::Abandoned))
}

/// The core's retry loop drives this client through ready futures: each
/// step blocks inside the call, then completes.
impl Link for ReconnectingClient {
    fn state(&mut self) -> &mut Reconnector {
        &mut self.state
    }

    fn is_open(&self) -> bool {
        self.is_connected()
    }

    async fn connect(&mut self) -> Result<bool, Error> {
        match self.client.as_mut() {
            Some(old) => old.reconnect().map(|()| true),
            None => Client::connect_endpoint(&self.endpoint, self.options).map(|client| {
                self.client = Some(client);
                false
            }),
        }
    }

    async fn pause(&mut self, delay: Duration) {
        match &self.interrupt {
            Some(shutdown) => {
                shutdown.wait_timeout(delay);
            }
            None => std::thread::sleep(delay),
        }
    }

    fn begin<R: Request>(&mut self, request: &R) -> Result<Token, Error> {
        match self.client.as_mut() {
            Some(client) => client.send(request),
            None => Err(CommandError::Closed.into()),
        }
    }

    async fn finish(&mut self, token: Token) -> Result<Response, Error> {
        match self.client.as_mut() {
            Some(client) => client.finish(token),
            None => Err(CommandError::Closed.into()),
        }
    }

    fn interrupted(&self) -> bool {
        self.interrupt.as_ref().is_some_and(Shutdown::is_triggered)
    }
}

impl Execute for ReconnectingClient {
    fn execute<R: Request>(&mut self, request: R) -> Result<R::Output, Error> {
        self.run(request, true)
    }
}
