//! A client that replaces its connection when it breaks.

use std::time::Duration;

use proto::lease::LeaseTracker;
use proto::retry::{self, ReconnectPolicy, Recovery};
use proto::{CommandError, Endpoint, Error, Execute, Options, Request, Session};

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
    policy: ReconnectPolicy,
    client: Option<Client>,
    leases: LeaseTracker,
    failures: u32,
    reconnects: u64,
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
            policy,
            client: None,
            leases: LeaseTracker::new(),
            failures: 0,
            reconnects: 0,
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
        &self.policy
    }

    /// Whether a connection is open now.
    pub fn is_connected(&self) -> bool {
        self.client.as_ref().is_some_and(Client::is_open)
    }

    /// How many times the connection was replaced.
    pub fn reconnects(&self) -> u64 {
        self.reconnects
    }

    /// The current connection's generation: 0 for the first, one more per
    /// reconnect.
    pub fn generation(&self) -> u64 {
        self.leases.generation()
    }

    /// The jobs held on the current connection and those lost with earlier
    /// ones.
    pub fn leases(&self) -> &LeaseTracker {
        &self.leases
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
        self.leases.connection_lost();
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
                if self.policy.exhausted(attempts) || self.interrupted() {
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

    fn interrupted(&self) -> bool {
        self.interrupt.as_ref().is_some_and(Shutdown::is_triggered)
    }

    fn connect_once(&mut self) -> Result<(), Error> {
        let wait = self.policy.wait_before_connect(self.failures);
        if !wait.is_zero() {
            self.pause(wait);
        }
        if self.interrupted() {
            return Err(CommandError::Closed.into());
        }
        let result = match self.client.as_mut() {
            Some(old) => old.reconnect().map(|()| true),
            None => Client::connect_endpoint(&self.endpoint, self.options).map(|client| {
                self.client = Some(client);
                false
            }),
        };
        match result {
            Ok(replaced) => {
                if replaced {
                    self.reconnects += 1;
                    self.leases.new_connection();
                }
                Ok(())
            }
            Err(error) => {
                self.failures = self.failures.saturating_add(1);
                Err(error)
            }
        }
    }

    fn pause(&self, wait: Duration) {
        match &self.interrupt {
            Some(shutdown) => {
                shutdown.wait_timeout(wait);
            }
            None => std::thread::sleep(wait),
        }
    }

    /// Runs `request`; with `resend` false, a command the rule would send
    /// again returns its error instead (the connection is still replaced
    /// on the next call).
    pub(crate) fn run<R: Request>(&mut self, request: R, resend: bool) -> Result<R::Output, Error> {
        let job_id = request.job_id();
        let mut attempts = 0u32;
        if let Some(client) = self.client.as_mut() {
            client.close_if_peer_left(IDLE_PROBE);
        }
        loop {
            if self.client.as_ref().is_some_and(|client| !client.is_open()) {
                self.leases.connection_lost();
            }
            if let Some(id) = job_id {
                self.leases.check(R::KIND, id)?;
            }
            let reply = match self.client.as_mut() {
                Some(client) if client.is_open() => client.run_ref(&request),
                _ => match self.connect_once() {
                    Ok(()) => continue,
                    Err(error) => {
                        attempts += 1;
                        if self.policy.exhausted(attempts) || self.interrupted() {
                            return Err(error);
                        }
                        continue;
                    }
                },
            };
            let error = match reply {
                Ok(response) => {
                    self.failures = 0;
                    self.leases.observe(R::KIND, job_id, &response);
                    return R::from_response(response);
                }
                Err(error) => error,
            };
            match retry::recovery(R::KIND, &error, self.policy.put_retry) {
                Recovery::Report => return Err(error),
                Recovery::Resend => {
                    self.broke();
                    attempts += 1;
                    if !resend || self.policy.exhausted(attempts) || self.interrupted() {
                        return Err(error);
                    }
                }
                _ => {
                    self.broke();
                    return Err(retry::unconfirmed(R::KIND, error));
                }
            }
        }
    }

    fn broke(&mut self) {
        self.failures = self.failures.saturating_add(1);
        self.leases.connection_lost();
    }
}

impl Execute for ReconnectingClient {
    fn execute<R: Request>(&mut self, request: R) -> Result<R::Output, Error> {
        self.run(request, true)
    }
}
