//! Client options every adapter honours the same way.
//!
//! The core has no clock; these are the durations adapters apply, kept here
//! so the defaults and their meaning are one thing in every adapter.

use core::time::Duration;

use crate::config::Config;
use crate::error::CommandError;

/// The read timeout for commands the server answers at once (5 s, as in the
/// design this client grew from). `reserve` waits without limit and
/// `reserve-with-timeout` waits its own timeout plus this.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// How long to wait for a TCP connection to be accepted.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The shortest timeout a client waits: non-zero timeouts below it are
/// raised to it. It is the resolution of tokio's timer, and a socket
/// timeout cannot tell shorter ones apart from a scheduler tick, so it is
/// the finest every adapter honours alike. (Zero is refused:
/// [`CommandError::ZeroTimeout`].)
pub const MIN_TIMEOUT: Duration = Duration::from_millis(1);

/// A one-call timeout as the adapters apply it: zero refused, anything
/// shorter than [`MIN_TIMEOUT`] raised to it.
///
/// ```
/// use beanstalk_proto::{options::checked_timeout, CommandError};
/// use std::time::Duration;
/// assert_eq!(checked_timeout(Duration::from_micros(1)), Ok(Duration::from_millis(1)));
/// assert_eq!(checked_timeout(Duration::from_secs(2)), Ok(Duration::from_secs(2)));
/// assert_eq!(
///     checked_timeout(Duration::ZERO),
///     Err(CommandError::ZeroTimeout { which: "call" })
/// );
/// ```
pub fn checked_timeout(timeout: Duration) -> Result<Duration, CommandError> {
    floored(timeout, "call")
}

fn floored(timeout: Duration, which: &'static str) -> Result<Duration, CommandError> {
    if timeout.is_zero() {
        Err(CommandError::ZeroTimeout { which })
    } else {
        Ok(timeout.max(MIN_TIMEOUT))
    }
}

/// Timeouts and limits of a client connection.
///
/// Every adapter checks them when it connects (see [`Options::checked`]):
/// a zero timeout is refused with [`CommandError::ZeroTimeout`] before
/// anything is sent, and one below [`MIN_TIMEOUT`] waits that long.
///
/// ```
/// use beanstalk_proto::Options;
/// use std::time::Duration;
/// let options = Options::default().read_timeout(Duration::from_secs(2)).max_job_size(1 << 20);
/// assert_eq!(options.read_timeout, Duration::from_secs(2));
/// assert_eq!(options.config.job_size_limit(), 1 << 20);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    /// How long to wait for a reply the server sends at once.
    pub read_timeout: Duration,
    /// How long a write may make no progress.
    pub write_timeout: Duration,
    /// How long to wait for the TCP handshake.
    pub connect_timeout: Duration,
    /// The protocol limits (job size, YAML body cap).
    pub config: Config,
}

impl Default for Options {
    /// 5 s read and write timeouts, 10 s connect timeout, 65,535-byte jobs.
    fn default() -> Self {
        Self {
            read_timeout: DEFAULT_READ_TIMEOUT,
            write_timeout: DEFAULT_READ_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            config: Config::default(),
        }
    }
}

impl Options {
    /// Sets the read timeout.
    #[must_use]
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// Sets the write timeout.
    #[must_use]
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout;
        self
    }

    /// Sets the connect timeout.
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the largest job sent or accepted; match the server's `-z`.
    #[must_use]
    pub fn max_job_size(mut self, bytes: u32) -> Self {
        self.config = self.config.max_job_size(bytes);
        self
    }

    /// Replaces the protocol limits.
    #[must_use]
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// The options as the adapters apply them: a zero timeout refused with
    /// [`CommandError::ZeroTimeout`], naming which; timeouts below
    /// [`MIN_TIMEOUT`] raised to it.
    ///
    /// ```
    /// use beanstalk_proto::{CommandError, Options};
    /// use std::time::Duration;
    /// let options = Options::default().read_timeout(Duration::from_micros(500)).checked()?;
    /// assert_eq!(options.read_timeout, Duration::from_millis(1));
    /// assert_eq!(
    ///     Options::default().write_timeout(Duration::ZERO).checked(),
    ///     Err(CommandError::ZeroTimeout { which: "write" })
    /// );
    /// # Ok::<(), CommandError>(())
    /// ```
    pub fn checked(self) -> Result<Self, CommandError> {
        Ok(Self {
            read_timeout: floored(self.read_timeout, "read")?,
            write_timeout: floored(self.write_timeout, "write")?,
            connect_timeout: floored(self.connect_timeout, "connect")?,
            config: self.config,
        })
    }

    /// The read deadline for a reply, given how long the command may wait
    /// ([`crate::ReplyTimeout`]) and an optional one-call override; `None`
    /// means no limit.
    pub fn reply_deadline(
        &self,
        wait: crate::ReplyTimeout,
        explicit: Option<Duration>,
    ) -> Option<Duration> {
        match explicit {
            Some(timeout) => Some(wait.resolve_explicit(timeout)),
            None => wait.resolve(self.read_timeout),
        }
    }
}
