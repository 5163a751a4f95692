//! The bookkeeping of a client that replaces its connection when it
//! breaks, without the I/O: every adapter's `ReconnectingClient` keeps one
//! [`Reconnector`] and does only the connecting, sending and waiting.
//!
//! A call goes like this:
//! 1. [`Reconnector::check`] the request (a job reserved on a lost
//!    connection is refused before anything is sent);
//! 2. connect if there is no open connection: wait
//!    [`Reconnector::wait_before_connect`], then report
//!    [`Reconnector::connected`] or [`Reconnector::connect_failed`];
//! 3. send it; a reply goes to [`Reconnector::answered`], a broken
//!    connection to [`Reconnector::broke_under`], which says whether to
//!    send the command again ([`crate::retry::recovery`]).

use core::time::Duration;

use core::future::Future;

use crate::cmd::Request;
use crate::connection::Token;
use crate::error::{CommandError, Error};
use crate::lease::LeaseTracker;
use crate::response::Response;
use crate::retry::{self, ReconnectPolicy, Recovery};

/// What a call does after its connection broke under its command.
#[derive(Debug)]
pub enum AfterBreak {
    /// Reconnect and send the command again. The error is the one to
    /// return if the caller gives up instead (it is shutting down, say).
    Resend(Error),
    /// Return this error: not about the connection, the command may have
    /// taken effect ([`Error::Unconfirmed`]), or the attempts ran out.
    Fail(Error),
}

/// The state of a reconnecting client: its policy, the jobs it holds,
/// consecutive failures (which set the backoff) and reconnects so far.
///
/// ```
/// use beanstalk_proto::reconnect::{AfterBreak, Reconnector};
/// use beanstalk_proto::retry::ReconnectPolicy;
/// use beanstalk_proto::{cmd, Error, ProtocolError};
///
/// let mut state = Reconnector::new(ReconnectPolicy::default());
/// state.connected(false);
/// let lost = || Error::Protocol(ProtocolError::UnexpectedEof { in_flight: 1 });
/// // A `watch` cannot take effect twice: send it again.
/// assert!(matches!(state.broke_under::<cmd::Watch>(lost(), 1), AfterBreak::Resend(_)));
/// // A `put` may have created its job: say so instead.
/// let put = state.broke_under::<cmd::Put>(lost(), 1);
/// assert!(matches!(put, AfterBreak::Fail(Error::Unconfirmed { .. })));
/// assert!(!state.wait_before_connect().is_zero()); // backing off now
/// state.connected(true);
/// assert_eq!((state.reconnects(), state.generation()), (1, 1));
/// ```
#[derive(Debug, Clone)]
pub struct Reconnector {
    policy: ReconnectPolicy,
    leases: LeaseTracker,
    /// Connection failures since the last command that succeeded.
    failures: u32,
    reconnects: u64,
}

impl Reconnector {
    /// No connection yet.
    pub fn new(policy: ReconnectPolicy) -> Self {
        Self {
            policy,
            leases: LeaseTracker::new(),
            failures: 0,
            reconnects: 0,
        }
    }

    /// The reconnect policy in force.
    pub fn policy(&self) -> &ReconnectPolicy {
        &self.policy
    }

    /// The jobs held on the current connection and those lost with earlier
    /// ones.
    pub fn leases(&self) -> &LeaseTracker {
        &self.leases
    }

    /// How many times the connection was replaced.
    pub fn reconnects(&self) -> u64 {
        self.reconnects
    }

    /// The current connection's generation: 0 for the first, one more per
    /// reconnect. A job reserved on an earlier generation is lost.
    pub fn generation(&self) -> u64 {
        self.leases.generation()
    }

    /// Consecutive connection failures so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// How long to wait before the next connection attempt: nothing after
    /// a success, then the policy's backoff.
    pub fn wait_before_connect(&self) -> Duration {
        self.policy.wait_before_connect(self.failures)
    }

    /// Whether a call that made `attempts` attempts should give up.
    pub fn exhausted(&self, attempts: u32) -> bool {
        self.policy.exhausted(attempts)
    }

    /// Whether a failed connection attempt, the `attempts`-th of a call, is
    /// worth another: only a lost or refused connection is, while the
    /// policy allows. A caller's error (a zero timeout) would fail the same
    /// way every time.
    pub fn retries_connect(&self, error: &Error, attempts: u32) -> bool {
        error.is_connection_error() && !self.exhausted(attempts)
    }

    /// A connection attempt succeeded; `replaced` when it replaced an
    /// earlier connection (whose session it restored).
    pub fn connected(&mut self, replaced: bool) {
        if replaced {
            self.reconnects += 1;
            self.leases.new_connection();
        }
    }

    /// A connection attempt failed.
    pub fn connect_failed(&mut self) {
        self.failures = self.failures.saturating_add(1);
    }

    /// The connection is gone (closed on purpose, or found closed): the
    /// jobs reserved on it are lost. Returns how many.
    pub fn connection_lost(&mut self) -> usize {
        self.leases.connection_lost()
    }

    /// Refuses, before anything is sent, a `delete`/`release`/`bury`/
    /// `touch` of a job reserved on a lost connection
    /// ([`Error::LeaseLost`]).
    pub fn check<R: Request>(&self, request: &R) -> Result<(), Error> {
        match request.job_id() {
            Some(id) => self.leases.check(R::KIND, id),
            None => Ok(()),
        }
    }

    /// The reply to `request` arrived: the connection works, the leases
    /// follow what the command did, and the reply is typed.
    pub fn answered<R: Request>(
        &mut self,
        request: &R,
        response: Response,
    ) -> Result<R::Output, Error> {
        self.failures = 0;
        self.leases.observe(R::KIND, request.job_id(), &response);
        R::from_response(response)
    }

    /// The call's command failed with `error` on its `attempts`-th attempt:
    /// whether to reconnect and send it again. A broken connection counts
    /// as a failure for the backoff and loses the leases it held.
    pub fn broke_under<R: Request>(&mut self, error: Error, attempts: u32) -> AfterBreak {
        let recovery = retry::recovery(R::KIND, &error, self.policy.put_retry);
        if recovery == Recovery::Report {
            return AfterBreak::Fail(error);
        }
        self.leases.connection_lost();
        if recovery == Recovery::GiveUp {
            // The server did nothing wrong: no backoff before the next
            // connection.
            return AfterBreak::Fail(error);
        }
        self.failures = self.failures.saturating_add(1);
        match recovery {
            Recovery::Resend if !self.policy.exhausted(attempts) => AfterBreak::Resend(error),
            Recovery::Resend => AfterBreak::Fail(error),
            _ => AfterBreak::Fail(retry::unconfirmed(R::KIND, error)),
        }
    }
}

/// What [`run`] needs of a reconnecting client: its bookkeeping, its
/// connection, and how to connect, wait and send. The I/O stays the
/// adapter's; the retry loop is written once, here.
pub trait Link {
    /// The bookkeeping.
    fn state(&mut self) -> &mut Reconnector;

    /// Whether a connection is open.
    fn is_open(&self) -> bool;

    /// Opens the first connection, or replaces the broken one and restores
    /// its session: `Ok(true)` when it replaced one.
    fn connect(&mut self) -> impl Future<Output = Result<bool, Error>> + Send;

    /// Waits `delay` before a connection attempt (the backoff).
    fn pause(&mut self, delay: Duration) -> impl Future<Output = ()> + Send;

    /// Queues `request` on the open connection.
    fn begin<R: Request>(&mut self, request: &R) -> Result<Token, Error>;

    /// Writes what is queued and waits for the reply to `token`.
    fn finish(&mut self, token: Token) -> impl Future<Output = Result<Response, Error>> + Send;

    /// Whether to stop retrying at once (a worker shutting down).
    fn interrupted(&self) -> bool {
        false
    }

    /// The connection broke under a command with `error` (for logging).
    fn on_break(&mut self, error: &Error) {
        let _ = error;
    }
}

/// One connection attempt, after the backoff the failures so far call for.
pub async fn connect_once<L: Link + ?Sized>(link: &mut L) -> Result<(), Error> {
    let wait = link.state().wait_before_connect();
    if !wait.is_zero() {
        link.pause(wait).await;
    }
    if link.interrupted() {
        return Err(CommandError::Closed.into());
    }
    match link.connect().await {
        Ok(replaced) => {
            link.state().connected(replaced);
            Ok(())
        }
        Err(error) => {
            link.state().connect_failed();
            Err(error)
        }
    }
}

/// Runs `request` on `link`, connecting when there is no connection and
/// sending it again after a break as the [`Reconnector`] says. At most
/// [`ReconnectPolicy::max_attempts`] attempts.
///
/// With `resend` false the command goes out on the connection open when
/// the call starts, or not at all: without one it fails with
/// [`CommandError::Closed`] and nothing connects, and a command that
/// could be sent again after a break returns its error instead (the
/// connection is replaced on the next call). That is for a caller that
/// must know which connection a command waits on, as a worker that closes
/// its reserving connection to shut down.
///
/// [`CommandError::Closed`]: crate::CommandError::Closed
pub async fn run<L, R>(link: &mut L, request: R, resend: bool) -> Result<R::Output, Error>
where
    L: Link + ?Sized,
    R: Request,
{
    let mut attempts = 0u32;
    loop {
        if !link.is_open() {
            link.state().connection_lost();
            if !resend {
                return Err(CommandError::Closed.into());
            }
        }
        link.state().check(&request)?;
        let sent = if link.is_open() {
            link.begin(&request)
        } else {
            match connect_once(link).await {
                Ok(()) => continue,
                Err(error) => Err(error),
            }
        };
        let token = match sent {
            Ok(token) => token,
            // Connecting failed (or the connection was found closed).
            Err(error) if error.is_connection_error() => {
                attempts += 1;
                if link.state().exhausted(attempts) || link.interrupted() {
                    return Err(error);
                }
                continue;
            }
            Err(error) => return Err(error),
        };
        let error = match link.finish(token).await {
            Ok(response) => return link.state().answered(&request, response),
            Err(error) => error,
        };
        if error.is_connection_error() {
            link.on_break(&error);
        }
        attempts += 1;
        match link.state().broke_under::<R>(error, attempts) {
            AfterBreak::Resend(error) if !resend || link.interrupted() => return Err(error),
            AfterBreak::Resend(_) => {}
            AfterBreak::Fail(error) => return Err(error),
        }
    }
}
