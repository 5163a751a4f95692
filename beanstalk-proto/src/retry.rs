//! Reconnection policy: how long to wait between attempts, and which
//! failures allow a command to be sent again.
//!
//! No clock and no randomness source: [`Backoff`] computes delays from the
//! attempt number (and, for jitter, a seed the caller provides), and
//! [`recovery`] decides from the command and the error alone. The adapters'
//! reconnecting clients and workers apply these rules; anyone driving the
//! core by hand can apply the same ones.
//!
//! # The rule
//! After the connection breaks, a command is sent again on the new
//! connection only if doing so cannot change what happened:
//! - it never reached the server ([`crate::CommandError::Closed`] or
//!   [`crate::CommandError::Broken`] before sending);
//! - it is idempotent ([`CommandKind::is_idempotent`]: `use`, `watch`,
//!   `ignore`, peeks, stats, tube lists);
//! - it is a reserve: whatever job it may have reserved was released by the
//!   server when the connection closed, so reserving again loses nothing;
//! - it is a `put` and the caller opted in to [`PutRetry::AtLeastOnce`].
//!
//! Anything else (`put` by default, `delete`, `release`, `bury`, `touch`,
//! `kick`, `kick-job`, `pause-tube`) is reported to the caller as
//! [`Error::Unconfirmed`]: it may or may not have taken effect.

use alloc::boxed::Box;
use core::time::Duration;

use crate::cmd::CommandKind;
use crate::error::{Error, ProtocolError};

/// Bounded exponential backoff: `initial * factor^attempt`, never more than
/// `max`, optionally with deterministic jitter.
///
/// Jitter ("equal jitter") picks each delay in `[d/2, d]`, from a seed the
/// caller provides, so two clients with different seeds spread out while a
/// test with a fixed seed sees the same delays every run.
///
/// ```
/// use beanstalk_proto::retry::Backoff;
/// use std::time::Duration;
///
/// let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
/// let delays: Vec<_> = (0..6).map(|attempt| backoff.delay(attempt).as_millis()).collect();
/// assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
///
/// let jittered = backoff.jitter(42);
/// let d = jittered.delay(3);
/// assert!(d >= Duration::from_millis(400) && d <= Duration::from_millis(800));
/// assert_eq!(d, backoff.jitter(42).delay(3)); // deterministic
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    factor: u32,
    seed: Option<u64>,
}

impl Default for Backoff {
    /// 50 ms, doubling, at most 5 s, no jitter: the reconnect default.
    fn default() -> Self {
        Self::new(Duration::from_millis(50), Duration::from_secs(5))
    }
}

impl Backoff {
    /// Starts at `initial`, doubles per attempt, stops growing at `max`.
    pub const fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            factor: 2,
            seed: None,
        }
    }

    /// The same delay for every attempt.
    ///
    /// ```
    /// use beanstalk_proto::retry::Backoff;
    /// use std::time::Duration;
    /// let fixed = Backoff::constant(Duration::from_secs(3));
    /// assert_eq!(fixed.delay(0), fixed.delay(10));
    /// ```
    pub const fn constant(delay: Duration) -> Self {
        Self {
            initial: delay,
            max: delay,
            factor: 1,
            seed: None,
        }
    }

    /// Multiplies the delay by `factor` per attempt instead of 2 (1 keeps
    /// it constant; 0 is treated as 1).
    #[must_use]
    pub const fn factor(mut self, factor: u32) -> Self {
        self.factor = if factor == 0 { 1 } else { factor };
        self
    }

    /// Spreads each delay over `[d/2, d]`, deterministically from `seed`.
    #[must_use]
    pub const fn jitter(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The first delay.
    pub const fn initial(&self) -> Duration {
        self.initial
    }

    /// The largest delay.
    pub const fn max(&self) -> Duration {
        self.max
    }

    /// The delay before retry number `attempt` (0 for the first retry).
    pub fn delay(&self, attempt: u32) -> Duration {
        let mut delay = self.initial.min(self.max);
        for _ in 0..attempt {
            if delay >= self.max {
                break;
            }
            delay = delay.saturating_mul(self.factor).min(self.max);
        }
        match self.seed {
            None => delay,
            Some(seed) => {
                let nanos = delay.as_nanos();
                let half = nanos / 2;
                let spread = u128::from(splitmix64(seed ^ u64::from(attempt).rotate_left(32)));
                let jittered = half + spread % (nanos - half + 1);
                let secs = u64::try_from(jittered / 1_000_000_000).unwrap_or(u64::MAX);
                // The remainder is below 10^9, so it fits.
                let nanos = u32::try_from(jittered % 1_000_000_000).unwrap_or(0);
                Duration::new(secs, nanos)
            }
        }
    }
}

/// SplitMix64: a tiny, well-mixed hash of one word, enough for jitter.
fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Whether a `put` whose reply was lost may be sent again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PutRetry {
    /// Never (the default): the caller gets [`Error::Unconfirmed`] and
    /// decides. Each acknowledged put created exactly one job; an
    /// unconfirmed one created zero or one.
    #[default]
    AtMostOnce,
    /// Send it again on the new connection: **at-least-once**. Every put
    /// that returns `Ok` created its job, but a put whose first reply was
    /// lost may have created a second, duplicate job.
    AtLeastOnce,
}

/// What a reconnecting driver does after a command failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Recovery {
    /// Not a failure of the connection (`NOT_FOUND`, `DRAINING`, a bad
    /// argument...): return the error; the connection is fine.
    Report,
    /// The connection is gone, and sending the command again on a new one
    /// cannot change the outcome: reconnect and send it again.
    Resend,
    /// The connection is gone and the command may have taken effect:
    /// replace the connection, but report [`Error::Unconfirmed`] for this
    /// command rather than send it again.
    Unconfirmed,
    /// The connection is gone, but the server is not to blame: the reply
    /// to a command whose replies carry bodies is past this client's own
    /// limits ([`ProtocolError::BodyTooLarge`]: a `stats` or tube list past
    /// `Config::max_yaml_body`), and would be again. Replace the
    /// connection, and return the error rather than send the command
    /// again. (A job past `max_job_size` keeps the connection:
    /// [`Error::JobTooLarge`].)
    ///
    /// [`ProtocolError::BodyTooLarge`]: crate::ProtocolError::BodyTooLarge
    GiveUp,
}

/// The rule in the [module docs](self): what to do after `error` answered a
/// command of kind `kind`.
///
/// ```
/// use beanstalk_proto::cmd::CommandKind;
/// use beanstalk_proto::retry::{recovery, PutRetry, Recovery};
/// use beanstalk_proto::{Error, ProtocolError};
///
/// let lost = Error::Protocol(ProtocolError::UnexpectedEof { in_flight: 1 });
/// assert_eq!(recovery(CommandKind::Watch, &lost, PutRetry::AtMostOnce), Recovery::Resend);
/// assert_eq!(recovery(CommandKind::Reserve, &lost, PutRetry::AtMostOnce), Recovery::Resend);
/// assert_eq!(recovery(CommandKind::Put, &lost, PutRetry::AtMostOnce), Recovery::Unconfirmed);
/// assert_eq!(recovery(CommandKind::Put, &lost, PutRetry::AtLeastOnce), Recovery::Resend);
/// assert_eq!(recovery(CommandKind::Delete, &lost, PutRetry::AtLeastOnce), Recovery::Unconfirmed);
/// assert_eq!(recovery(CommandKind::Put, &Error::Draining, PutRetry::AtLeastOnce), Recovery::Report);
/// let too_large = Error::Protocol(ProtocolError::BodyTooLarge { len: 100_000, max: 65_535 });
/// assert_eq!(recovery(CommandKind::Reserve, &too_large, PutRetry::AtMostOnce), Recovery::GiveUp);
/// // A `put` gets no body: that reply broke the connection, and the job may exist.
/// assert_eq!(recovery(CommandKind::Put, &too_large, PutRetry::AtMostOnce), Recovery::Unconfirmed);
/// ```
pub fn recovery(kind: CommandKind, error: &Error, puts: PutRetry) -> Recovery {
    if !error.is_connection_error() || matches!(error, Error::Unconfirmed { .. }) {
        return Recovery::Report;
    }
    // Only where the command's reply may carry a body: after a `put`,
    // say, a body announced at all is a server's or proxy's fault.
    if let Error::Protocol(ProtocolError::BodyTooLarge { .. }) = error {
        if !kind.has_short_reply() {
            return Recovery::GiveUp;
        }
    }
    if !error.outcome_unknown() || safe_to_resend(kind, puts) {
        Recovery::Resend
    } else {
        Recovery::Unconfirmed
    }
}

/// Whether a command of kind `kind` whose reply was lost with its
/// connection may be sent again on a new connection (see the [module
/// docs](self)).
///
/// ```
/// use beanstalk_proto::cmd::CommandKind;
/// use beanstalk_proto::retry::{safe_to_resend, PutRetry};
/// assert!(safe_to_resend(CommandKind::ReserveWithTimeout, PutRetry::AtMostOnce));
/// assert!(!safe_to_resend(CommandKind::Touch, PutRetry::AtLeastOnce));
/// ```
pub const fn safe_to_resend(kind: CommandKind, puts: PutRetry) -> bool {
    kind.is_idempotent()
        || matches!(
            kind,
            CommandKind::Reserve | CommandKind::ReserveWithTimeout | CommandKind::ReserveJob
        )
        || matches!((kind, puts), (CommandKind::Put, PutRetry::AtLeastOnce))
}

/// How a reconnecting client behaves: the backoff between attempts, how
/// many attempts one call may make, and whether lost puts are re-sent.
///
/// ```
/// use beanstalk_proto::retry::{Backoff, PutRetry, ReconnectPolicy};
/// use std::time::Duration;
///
/// let policy = ReconnectPolicy::default()
///     .backoff(Backoff::new(Duration::from_millis(10), Duration::from_secs(1)).jitter(7))
///     .max_attempts(Some(20))
///     .put_retry(PutRetry::AtLeastOnce);
/// assert_eq!(policy.max_attempts, Some(20));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct ReconnectPolicy {
    /// Delay before each reconnect attempt after the first. The first
    /// attempt after a healthy period waits `backoff.delay(0)`, and delays
    /// only reset once a command succeeds on the new connection, so a
    /// server that accepts connections and drops them at once is never
    /// hammered in a tight loop.
    pub backoff: Backoff,
    /// How many failed attempts (failed connects, or connections that broke
    /// under a command that was then re-sent) one call may go through before
    /// it returns the last error; `None` retries without end (what a worker
    /// wants).
    pub max_attempts: Option<u32>,
    /// Whether `put`s whose replies were lost are re-sent.
    pub put_retry: PutRetry,
}

impl Default for ReconnectPolicy {
    /// [`Backoff::default`] (50 ms doubling to 5 s), 8 attempts per call
    /// (the first at once, then 50 ms doubling to 3.2 s: about 6.4 s of
    /// waiting in all), at-most-once puts.
    ///
    /// ```
    /// use beanstalk_proto::retry::ReconnectPolicy;
    /// let policy = ReconnectPolicy::default();
    /// let waits = (0..8).map(|failures| policy.wait_before_connect(failures));
    /// assert_eq!(waits.sum::<std::time::Duration>().as_millis(), 6_350);
    /// assert!(policy.exhausted(8));
    /// ```
    fn default() -> Self {
        Self {
            backoff: Backoff::default(),
            max_attempts: Some(8),
            put_retry: PutRetry::AtMostOnce,
        }
    }
}

impl ReconnectPolicy {
    /// Sets the backoff.
    #[must_use]
    pub const fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Sets the attempts per call; `None` for no limit.
    #[must_use]
    pub const fn max_attempts(mut self, attempts: Option<u32>) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// Sets whether lost puts are re-sent.
    #[must_use]
    pub const fn put_retry(mut self, put_retry: PutRetry) -> Self {
        self.put_retry = put_retry;
        self
    }

    /// Whether a call that has failed `attempts` times should give up.
    pub const fn exhausted(&self, attempts: u32) -> bool {
        match self.max_attempts {
            Some(max) => attempts >= max,
            None => false,
        }
    }

    /// The wait before the next connection attempt when the last
    /// `consecutive_failures` attempts or connections failed: none for the
    /// first attempt, then the backoff.
    ///
    /// ```
    /// use beanstalk_proto::retry::{Backoff, ReconnectPolicy};
    /// use std::time::Duration;
    /// let policy = ReconnectPolicy::default()
    ///     .backoff(Backoff::new(Duration::from_millis(10), Duration::from_millis(40)));
    /// let waits: Vec<_> = (0..5).map(|n| policy.wait_before_connect(n).as_millis()).collect();
    /// assert_eq!(waits, [0, 10, 20, 40, 40]);
    /// ```
    pub fn wait_before_connect(&self, consecutive_failures: u32) -> Duration {
        match consecutive_failures {
            0 => Duration::ZERO,
            n => self.backoff.delay(n - 1),
        }
    }
}

/// Wraps the error of a command that [`recovery`] classed as
/// [`Recovery::Unconfirmed`].
pub fn unconfirmed(kind: CommandKind, cause: Error) -> Error {
    Error::Unconfirmed {
        command: kind,
        cause: Box::new(cause),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{CommandError, ProtocolError};

    #[test]
    fn backoff_saturates_and_never_overflows() {
        let backoff = Backoff::new(Duration::from_secs(1), Duration::MAX).factor(1000);
        assert_eq!(backoff.delay(u32::MAX), Duration::MAX);
        let jittered = backoff.jitter(1);
        assert!(jittered.delay(u32::MAX) >= Duration::MAX / 2);
    }

    #[test]
    fn jitter_stays_in_range_and_varies() {
        let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
        let mut seen = alloc::collections::BTreeSet::new();
        for seed in 0..200 {
            let d = backoff.jitter(seed).delay(2);
            assert!(d >= Duration::from_millis(200) && d <= Duration::from_millis(400));
            seen.insert(d);
        }
        assert!(seen.len() > 100, "jitter should spread delays");
    }

    #[test]
    fn zero_initial_stays_zero() {
        let backoff = Backoff::new(Duration::ZERO, Duration::from_secs(1));
        assert_eq!(backoff.delay(5), Duration::ZERO);
        assert_eq!(backoff.jitter(3).delay(5), Duration::ZERO);
    }

    #[test]
    fn never_sent_is_always_resent() {
        let closed = Error::Command(CommandError::Broken(ProtocolError::Abandoned));
        for kind in CommandKind::ALL {
            assert_eq!(
                recovery(kind, &closed, PutRetry::AtMostOnce),
                Recovery::Resend
            );
        }
    }

    #[test]
    fn outcome_unknown_rule_for_every_command() {
        let lost = Error::Timeout(Duration::from_secs(5));
        for kind in CommandKind::ALL {
            let expected = match kind {
                CommandKind::Put
                | CommandKind::Delete
                | CommandKind::Release
                | CommandKind::Bury
                | CommandKind::Touch
                | CommandKind::Kick
                | CommandKind::KickJob
                | CommandKind::PauseTube
                | CommandKind::Quit => Recovery::Unconfirmed,
                _ => Recovery::Resend,
            };
            assert_eq!(
                recovery(kind, &lost, PutRetry::AtMostOnce),
                expected,
                "{kind:?}"
            );
        }
    }

    #[test]
    fn unconfirmed_is_reported_not_retried() {
        let error = unconfirmed(CommandKind::Put, Error::Timeout(Duration::from_secs(1)));
        assert!(error.outcome_unknown());
        assert!(error.to_string().contains("may or may not exist"));
        assert_eq!(
            recovery(CommandKind::Put, &error, PutRetry::AtLeastOnce),
            Recovery::Report
        );
    }
}
