//! A client that replaces its connection when it breaks, on smol or
//! async-std.

use std::time::Duration;

use proto::lease::LeaseTracker;
use proto::reconnect::{Link, Reconnector};
use proto::retry::ReconnectPolicy;
use proto::{
    AsyncExecute, CommandError, Endpoint, Error, Options, Request, Response, Session, Token,
};

use crate::client::Client;

/// A command sent after the connection has been quiet this long first
/// checks that the server has not closed it meanwhile (a restart, an idle
/// timeout), so it goes out on a new connection instead of into a dead one
/// and coming back "outcome unknown". The check is a syscall, so a busy
/// connection skips it.
const IDLE_PROBE: Duration = Duration::from_millis(100);

/// A [`Client`] that reconnects, with bounded exponential backoff, when its
/// connection breaks, and restores the tube in use and the watch list
/// before any other command on the new connection: the same client as the
/// tokio adapter's, from the same core ([`proto::reconnect`]).
///
/// It has all 25 commands ([`crate::AsyncCommands`]). A command whose
/// connection broke is sent again when that cannot change its outcome
/// (it never reached the server; `use`, `watch`, peeks, stats, lists,
/// reserves); otherwise it fails with [`Error::Unconfirmed`]
/// (`outcome_unknown()` is true; opt in to re-sending puts with
/// [`proto::retry::PutRetry::AtLeastOnce`]). `delete`, `release`, `bury`
/// and `touch` of a job reserved on a lost connection fail with
/// [`Error::LeaseLost`] without being sent. Errors that are not about the
/// connection never cause a reconnect.
///
/// ```
/// # smol::block_on(async {
/// # let mut server = beanstalk_test_support::Server::builder().binlog_temp().start();
/// use beanstalk_async_std::{AsyncCommands, PutOptions, ReconnectingClient};
///
/// let mut client = ReconnectingClient::connect(&server.url()).await?;
/// client.use_tube("emails").await?;
/// server.restart(); // kill -9, start again with the same binlog
/// # smol::Timer::after(std::time::Duration::from_millis(150)).await;
/// // The idle connection's end is noticed before the put is written.
/// client.put("after", PutOptions::default()).await?;
/// assert_eq!(client.list_tube_used().await?.as_str(), "emails");
/// assert_eq!(client.reconnects(), 1);
/// # Ok::<(), beanstalk_async_std::Error>(())
/// # }).unwrap();
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
}

impl ReconnectingClient {
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
        while let Err(error) = proto::reconnect::connect_once(&mut client).await {
            attempts += 1;
            if policy.exhausted(attempts) {
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

    /// Whether a connection is open now.
    pub fn is_connected(&self) -> bool {
        self.client.as_ref().is_some_and(Client::is_open)
    }

    /// The bookkeeping: reconnects so far, the connection's generation,
    /// the jobs held and lost, the policy.
    pub fn state(&self) -> &Reconnector {
        &self.state
    }

    /// How many times the connection was replaced.
    pub fn reconnects(&self) -> u64 {
        self.state.reconnects()
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

    /// Runs `request` through the core's retry loop, after making sure an
    /// idle connection was not closed by the server meanwhile.
    async fn run<R: Request>(&mut self, request: R) -> Result<R::Output, Error> {
        if let Some(client) = self.client.as_mut() {
            client.close_if_peer_left(IDLE_PROBE);
        }
        proto::reconnect::run(self, request, true).await
    }
}

impl Link for ReconnectingClient {
    fn state(&mut self) -> &mut Reconnector {
        &mut self.state
    }

    fn is_open(&self) -> bool {
        self.is_connected()
    }

    async fn connect(&mut self) -> Result<bool, Error> {
        match self.client.as_mut() {
            Some(old) => old.reconnect().await.map(|()| true),
            None => Client::connect_endpoint(&self.endpoint, self.options)
                .await
                .map(|client| {
                    self.client = Some(client);
                    false
                }),
        }
    }

    async fn pause(&mut self, delay: Duration) {
        async_io::Timer::after(delay).await;
    }

    fn begin<R: Request>(&mut self, request: &R) -> Result<Token, Error> {
        match self.client.as_mut() {
            Some(client) => client.send(request),
            None => Err(CommandError::Closed.into()),
        }
    }

    async fn finish(&mut self, token: Token) -> Result<Response, Error> {
        match self.client.as_mut() {
            Some(client) => client.finish(token).await,
            None => Err(CommandError::Closed.into()),
        }
    }
}

impl AsyncExecute for ReconnectingClient {
    fn execute<R>(&mut self, request: R) -> impl Future<Output = Result<R::Output, Error>> + Send
    where
        R: Request + Send,
        R::Output: Send,
    {
        self.run(request)
    }
}
