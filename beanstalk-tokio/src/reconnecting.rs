//! A client that replaces its connection when it breaks.

use proto::lease::LeaseTracker;
use std::time::Duration;

use proto::reconnect::{Link, Reconnector};
use proto::retry::ReconnectPolicy;
use proto::{
    AsyncExecute, CommandError, Endpoint, Error, Options, Request, Response, Session, Token,
};

use crate::client::Client;

/// A [`Client`] that reconnects, with bounded exponential backoff, when its
/// connection breaks, and restores the tube in use and the watch list
/// before any other command on the new connection.
///
/// It has all 25 commands ([`crate::AsyncCommands`]). What happens to a
/// command whose connection broke follows [`proto::retry`]:
/// - commands that never reached the server, idempotent commands (`use`,
///   `watch`, `ignore`, peeks, stats, lists) and reserves are sent again on
///   the new connection, transparently;
/// - anything else whose reply was lost (`put` by default, `delete`,
///   `release`, `bury`, `touch`, `kick`, ...) fails with
///   [`Error::Unconfirmed`] (`outcome_unknown()` is true): for a `put`, the
///   job may exist. The connection is replaced for the next call. Opt in
///   to re-sending puts with [`proto::retry::PutRetry::AtLeastOnce`]
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
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), beanstalk_tokio::Error> {
/// # let mut server = beanstalk_test_support::Server::builder().binlog_temp().start();
/// # let address = server.url();
/// use beanstalk_tokio::{AsyncCommands, PutOptions, ReconnectingClient};
///
/// let mut client = ReconnectingClient::connect(&address).await?;
/// client.use_tube("emails").await?;
/// client.put("before", PutOptions::default()).await?;
///
/// server.restart(); // kill -9, start again with the same binlog
///
/// // The first command after the restart finds the connection dead. A put
/// // is not re-sent: it reports that its job may exist.
/// match client.put("during", PutOptions::default()).await {
///     Ok(_) => {}                                 // the break was noticed in time
///     Err(error) => assert!(error.outcome_unknown()), // the put's reply was lost
/// }
/// // The connection was replaced and `use emails` restored before anything else.
/// client.put("after", PutOptions::default()).await?;
/// assert_eq!(client.list_tube_used().await?.as_str(), "emails");
/// assert_eq!(client.reconnects(), 1);
/// # Ok(())
/// # }
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
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), beanstalk_tokio::Error> {
    /// # let server = beanstalk_test_support::Server::start();
    /// use beanstalk_tokio::proto::retry::{Backoff, PutRetry, ReconnectPolicy};
    /// use beanstalk_tokio::{Options, ReconnectingClient};
    /// use std::time::Duration;
    ///
    /// let policy = ReconnectPolicy::default()
    ///     .backoff(Backoff::new(Duration::from_millis(20), Duration::from_secs(2)).jitter(1))
    ///     .max_attempts(None) // keep trying
    ///     .put_retry(PutRetry::AtLeastOnce);
    /// let client = ReconnectingClient::connect_with(&server.url(), Options::default(), policy).await?;
    /// assert!(client.is_connected());
    /// # Ok(())
    /// # }
    /// ```
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
        self.client.as_ref().is_some_and(Client::is_open)
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
        self.client
            .as_ref()
            .map(|client| client.connection().session())
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
        proto::reconnect::connect_once(self).await
    }
}

impl ReconnectingClient {
    /// Runs `request` through the core's retry loop, after making sure an
    /// idle connection was not closed by the server meanwhile.
    async fn run<R: Request>(&mut self, request: R) -> Result<R::Output, Error> {
        if let Some(client) = self.client.as_mut() {
            client.close_if_peer_left();
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
        let connected = match self.client.as_mut() {
            Some(old) => old.reconnect().await.map(|()| true),
            None => Client::connect_endpoint(&self.endpoint, self.options)
                .await
                .map(|client| {
                    self.client = Some(client);
                    false
                }),
        };
        match &connected {
            Ok(true) => {
                crate::event!(
                    info,
                    generation = self.state.generation() + 1,
                    "reconnected"
                );
            }
            Ok(false) => {}
            Err(error) => {
                crate::event!(warn, %error, "connecting failed");
                let _ = error;
            }
        }
        connected
    }

    async fn pause(&mut self, delay: Duration) {
        crate::event!(
            debug,
            ?delay,
            failures = self.state.failures(),
            "waiting before reconnecting"
        );
        tokio::time::sleep(delay).await;
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
        crate::event!(warn, %error, "connection lost; reconnecting");
        let _ = error;
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
