//! The 25 commands, each a typed value that can only hold valid arguments.
//!
//! Grouped by concept: [`put`] for producers, [`reserve`] for taking jobs,
//! [`job`] for what a worker does with a job it holds, [`peek`] for looking
//! without taking, [`tubes`] for use/watch/pause and tube lists, [`stats`]
//! for the three stats commands, and [`quit`].
//!
//! Every constructor validates; [`Request::encode`] can then not fail and
//! never writes a line longer than [`MAX_COMMAND_LINE`] bytes.

use core::time::Duration;

use crate::config::Config;
use crate::error::{CommandError, Error, ProtocolError};
use crate::frame::{Head, Limits, ReplyWord, parse_numbers_after};
use crate::response::Response;
use crate::tube::Tube;
use crate::write_buf::WriteBuf;

pub mod job;
pub mod peek;
pub mod put;
pub mod quit;
pub mod reserve;
pub mod stats;
pub mod tubes;

pub use job::{Bury, Delete, Kick, KickJob, Release, ReleaseOutcome, Touch};
pub use peek::{Peek, PeekBuried, PeekDelayed, PeekReady};
pub use put::{Body, Put, PutOptions, PutReceipt};
pub use quit::Quit;
pub use reserve::{Reserve, ReserveJob, ReserveWithTimeout};
pub use stats::{Stats, StatsJob, StatsTube};
pub use tubes::{Ignore, ListTubeUsed, ListTubes, ListTubesWatched, PauseTube, Use, Watch};

/// The longest command line beanstalkd reads, CRLF included. A longer line
/// makes the server discard it and, at some lengths, the next command too.
pub const MAX_COMMAND_LINE: usize = 224;

/// One beanstalkd command: how to write it and how to read its answer.
///
/// Implemented by the 25 command types in this module. Drivers call
/// [`crate::Connection::send`] with it and, when the reply comes back,
/// [`Request::from_response`].
pub trait Request {
    /// What a successful reply turns into.
    type Output;

    /// Which command this is; decides which replies fit.
    const KIND: CommandKind;

    /// Writes the command line (and body, for `put`) into `dst`. Checks
    /// nothing: the job-size limit is [`Request::check`]'s, which
    /// [`crate::Connection::send`] calls first.
    fn encode(&self, dst: &mut WriteBuf);

    /// Checks limits that depend on the connection (the job size). Called
    /// by [`crate::Connection::send`] before anything is encoded.
    fn check(&self, config: &Config) -> Result<(), CommandError> {
        let _ = config;
        Ok(())
    }

    /// How long a reply may take to come.
    fn reply_timeout(&self) -> ReplyTimeout {
        ReplyTimeout::Default
    }

    /// The tube this command names, for commands whose reply changes the
    /// connection's `use`/`watch` state.
    fn session_tube(&self) -> Option<&Tube> {
        None
    }

    /// The job this command names, for the commands that take a job id
    /// (`delete`, `release`, `bury`, `touch`, `kick-job`, `peek`,
    /// `stats-job`, `reserve-job`). A reconnecting driver uses it to refuse
    /// `delete`/`release`/`bury`/`touch` on a job reserved on a connection
    /// that has since been lost (see [`crate::lease`]).
    ///
    /// ```
    /// use beanstalk_proto::{cmd, Request};
    /// assert_eq!(cmd::Touch::new(7).job_id(), Some(7));
    /// assert_eq!(cmd::Reserve.job_id(), None);
    /// ```
    fn job_id(&self) -> Option<crate::response::JobId> {
        None
    }

    /// Types the reply to this command.
    fn from_response(response: Response) -> Result<Self::Output, Error>;
}

/// How long a driver should wait for a command's reply. The core has no
/// clock; this is the policy, and drivers apply it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplyTimeout {
    /// The server answers at once: wait the driver's default read timeout
    /// (5 s unless configured).
    Default,
    /// The server may hold the reply for up to this long by design
    /// (`reserve-with-timeout`): wait this plus the default.
    ServerWait(Duration),
    /// The server may hold the reply forever (`reserve`): no timeout.
    Indefinite,
}

impl ReplyTimeout {
    /// The read deadline to apply, given the driver's default; `None` means
    /// wait without limit.
    ///
    /// ```
    /// use beanstalk_proto::ReplyTimeout;
    /// use std::time::Duration;
    /// let default = Duration::from_secs(5);
    /// assert_eq!(ReplyTimeout::Default.resolve(default), Some(default));
    /// assert_eq!(
    ///     ReplyTimeout::ServerWait(Duration::from_secs(10)).resolve(default),
    ///     Some(Duration::from_secs(15))
    /// );
    /// assert_eq!(ReplyTimeout::Indefinite.resolve(default), None);
    /// ```
    pub fn resolve(self, default: Duration) -> Option<Duration> {
        match self {
            Self::Default => Some(default),
            Self::ServerWait(wait) => Some(wait.saturating_add(default)),
            Self::Indefinite => None,
        }
    }

    /// Whether the server may hold this reply back for long by design
    /// (`reserve`, `reserve-with-timeout` above 0). While it does, it
    /// answers nothing else on the connection.
    pub fn may_wait(self) -> bool {
        match self {
            Self::Default => false,
            Self::ServerWait(wait) => !wait.is_zero(),
            Self::Indefinite => true,
        }
    }

    /// The read deadline when the caller chose `timeout` for this one call:
    /// the server-side wait plus `timeout`, and bounded even for `reserve`.
    ///
    /// ```
    /// use beanstalk_proto::ReplyTimeout;
    /// use std::time::Duration;
    /// let one = Duration::from_secs(1);
    /// assert_eq!(ReplyTimeout::Indefinite.resolve_explicit(one), one);
    /// assert_eq!(ReplyTimeout::ServerWait(one).resolve_explicit(one), 2 * one);
    /// ```
    pub fn resolve_explicit(self, timeout: Duration) -> Duration {
        match self {
            Self::Default | Self::Indefinite => timeout,
            Self::ServerWait(wait) => wait.saturating_add(timeout),
        }
    }
}

/// The 25 commands, as a plain tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[allow(missing_docs)] // each variant is the command `name` returns
pub enum CommandKind {
    Put,
    Use,
    Reserve,
    ReserveWithTimeout,
    ReserveJob,
    Delete,
    Release,
    Bury,
    Touch,
    Watch,
    Ignore,
    Peek,
    PeekReady,
    PeekDelayed,
    PeekBuried,
    Kick,
    KickJob,
    StatsJob,
    StatsTube,
    Stats,
    ListTubes,
    ListTubeUsed,
    ListTubesWatched,
    Quit,
    PauseTube,
}

impl CommandKind {
    /// All 25 commands.
    pub const ALL: [Self; 25] = [
        Self::Put,
        Self::Use,
        Self::Reserve,
        Self::ReserveWithTimeout,
        Self::ReserveJob,
        Self::Delete,
        Self::Release,
        Self::Bury,
        Self::Touch,
        Self::Watch,
        Self::Ignore,
        Self::Peek,
        Self::PeekReady,
        Self::PeekDelayed,
        Self::PeekBuried,
        Self::Kick,
        Self::KickJob,
        Self::StatsJob,
        Self::StatsTube,
        Self::Stats,
        Self::ListTubes,
        Self::ListTubeUsed,
        Self::ListTubesWatched,
        Self::Quit,
        Self::PauseTube,
    ];

    /// The command's name on the wire.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Put => "put",
            Self::Use => "use",
            Self::Reserve => "reserve",
            Self::ReserveWithTimeout => "reserve-with-timeout",
            Self::ReserveJob => "reserve-job",
            Self::Delete => "delete",
            Self::Release => "release",
            Self::Bury => "bury",
            Self::Touch => "touch",
            Self::Watch => "watch",
            Self::Ignore => "ignore",
            Self::Peek => "peek",
            Self::PeekReady => "peek-ready",
            Self::PeekDelayed => "peek-delayed",
            Self::PeekBuried => "peek-buried",
            Self::Kick => "kick",
            Self::KickJob => "kick-job",
            Self::StatsJob => "stats-job",
            Self::StatsTube => "stats-tube",
            Self::Stats => "stats",
            Self::ListTubes => "list-tubes",
            Self::ListTubeUsed => "list-tube-used",
            Self::ListTubesWatched => "list-tubes-watched",
            Self::Quit => "quit",
            Self::PauseTube => "pause-tube",
        }
    }

    /// Whether sending the command twice has the same effect as sending it
    /// once, so a driver may send it again on a new connection when the
    /// first connection broke before the reply: `use`, `watch`, `ignore`,
    /// the peeks, the stats and the tube lists. `put`, `delete`,
    /// `release`, `bury`, `touch`, `kick`, `kick-job`, the reserves,
    /// `pause-tube` and `quit` are not. See [`crate::retry`] for the whole
    /// rule, which also covers reserves.
    ///
    /// ```
    /// use beanstalk_proto::cmd::CommandKind;
    /// assert!(CommandKind::Watch.is_idempotent());
    /// assert!(!CommandKind::Put.is_idempotent());
    /// ```
    pub const fn is_idempotent(self) -> bool {
        matches!(
            self,
            Self::Use
                | Self::Watch
                | Self::Ignore
                | Self::Peek
                | Self::PeekReady
                | Self::PeekDelayed
                | Self::PeekBuried
                | Self::StatsJob
                | Self::StatsTube
                | Self::Stats
                | Self::ListTubes
                | Self::ListTubeUsed
                | Self::ListTubesWatched
        )
    }

    /// Whether the reply names the tube the command did, and so is about
    /// as long as the command: `use` (`USING <tube>`, up to 208 bytes).
    /// Pipelined, such commands can keep no more unanswered than their
    /// replies fit the client's receive buffer.
    ///
    /// ```
    /// use beanstalk_proto::cmd::CommandKind;
    ///
    /// assert!(CommandKind::Use.reply_repeats_tube());
    /// assert!(!CommandKind::Watch.reply_repeats_tube(), "WATCHING <count>");
    /// ```
    pub const fn reply_repeats_tube(self) -> bool {
        matches!(self, Self::Use)
    }

    /// Whether every reply to the command is one line the server gives at
    /// once, never a body: `put`, `use`, `delete`, `release`, `bury`,
    /// `touch`, `watch`, `ignore`, `kick`, `kick-job`, `pause-tube` and
    /// `quit`. Their replies are at most 31 bytes
    /// (`INSERTED 18446744073709551615\r\n`), but for `use`'s, which names
    /// the tube again ([`CommandKind::reply_repeats_tube`]). A pipeline of
    /// these can keep more unanswered, because the server never blocks
    /// writing their replies.
    pub const fn has_short_reply(self) -> bool {
        matches!(
            self,
            Self::Put
                | Self::Use
                | Self::Delete
                | Self::Release
                | Self::Bury
                | Self::Touch
                | Self::Watch
                | Self::Ignore
                | Self::Kick
                | Self::KickJob
                | Self::PauseTube
                | Self::Quit
        )
    }

    /// The fewest bytes a reply to this command can have, when every reply
    /// to it is one short line ([`CommandKind::has_short_reply`]): what a
    /// read may count on for each such command in flight (see
    /// [`read_low_water`](crate::read_low_water)). `quit` has no reply (0);
    /// the others range from 8 (`BURIED\r\n`) to 10 (`put`: `BURIED 1\r\n`
    /// and `DRAINING\r\n`). Kinds whose replies carry bodies count the
    /// shortest reply of all, [`SHORTEST_REPLY`](crate::read_low_water::SHORTEST_REPLY).
    ///
    /// ```
    /// use beanstalk_proto::cmd::CommandKind;
    ///
    /// assert_eq!(CommandKind::Put.shortest_reply(), "BURIED 1\r\n".len());
    /// assert_eq!(CommandKind::Delete.shortest_reply(), "DELETED\r\n".len());
    /// ```
    pub const fn shortest_reply(self) -> usize {
        match self {
            Self::Quit => 0,
            // `BURIED 1`, `DRAINING`
            Self::Put | Self::Watch | Self::Ignore | Self::Kick => 10,
            // `USING x`, `DELETED`, `TOUCHED`
            Self::Use | Self::Delete | Self::Touch => 9,
            // `BURIED`, `KICKED`, `PAUSED`
            _ => 8,
        }
    }

    /// Whether the command acts on the tube in use (set by `use`): `put`,
    /// `kick`, the three state peeks and `list-tube-used`. A connection
    /// shared by tasks that use different tubes must `use` the right one
    /// before these.
    pub const fn depends_on_tube_in_use(self) -> bool {
        matches!(
            self,
            Self::Put
                | Self::Kick
                | Self::PeekReady
                | Self::PeekDelayed
                | Self::PeekBuried
                | Self::ListTubeUsed
        )
    }

    /// The reply a command of this kind gets when all goes well, if it
    /// is at the start of `buf` whole: `INSERTED <id>` after a `put`,
    /// `RESERVED <id> <bytes>` (its line) after a reserve, `DELETED` after
    /// a `delete`. Returns the head and the line's length with its CRLF;
    /// `None` for any other reply or a partial one, which
    /// [`parse_frame`](crate::frame::parse_frame) then takes. On what it
    /// takes it agrees with `parse_frame`, and [`CommandKind::check_reply`]
    /// accepts it. A pipelined `put`'s reply costs about 190 fewer
    /// instructions this way, of about 440 (callgrind).
    #[inline(always)]
    pub(crate) fn parse_usual_reply(
        self,
        buf: &[u8],
        limits: &Limits,
    ) -> Option<(Head<'static>, usize)> {
        match self {
            Self::Put => {
                let ([id], len) = parse_numbers_after(buf, b"INSERTED ")?;
                Some((Head::Inserted(id), len))
            }
            Self::Reserve | Self::ReserveWithTimeout | Self::ReserveJob => {
                let ([id, body], len) = parse_numbers_after(buf, b"RESERVED ")?;
                // A body over the cap is the general parser's error to report.
                let body = usize::try_from(body)
                    .ok()
                    .filter(|body| *body <= limits.max_job_body)?;
                Some((Head::Reserved { id, len: body }, len))
            }
            Self::Delete => buf
                .starts_with(b"DELETED\r\n")
                .then_some((Head::Word(ReplyWord::Deleted), "DELETED\r\n".len())),
            _ => None,
        }
    }

    /// Whether `head` can answer this command, and if so, whether the
    /// stream is still in sync.
    ///
    /// `OUT_OF_MEMORY`, `INTERNAL_ERROR` and `DRAINING` may answer anything.
    /// `BAD_FORMAT` and `UNKNOWN_COMMAND` are harmless after a one-line
    /// command, but after `put` they mean the server did not consume the
    /// body and is reading it as commands, so they break the connection,
    /// as does `EXPECTED_CRLF`.
    #[inline(always)]
    pub fn check_reply(self, head: &Head<'_>) -> Result<(), ProtocolError> {
        use ReplyWord as W;
        let word = head.word();
        let fits = match word {
            W::OutOfMemory | W::InternalError | W::Draining => true,
            W::BadFormat | W::UnknownCommand | W::ExpectedCrlf => {
                if self == Self::Put || word == W::ExpectedCrlf {
                    return Err(ProtocolError::Desync {
                        command: self.name(),
                        reply: word,
                    });
                }
                true
            }
            _ => self.accepts(head),
        };
        if fits {
            Ok(())
        } else {
            Err(ProtocolError::UnexpectedReply {
                command: self.name(),
                reply: word,
            })
        }
    }

    /// The command-specific replies (success and outcomes).
    fn accepts(self, head: &Head<'_>) -> bool {
        use ReplyWord as W;
        match (self, head) {
            (Self::Put, Head::Inserted(_) | Head::Buried(Some(_))) => true,
            (Self::Put, Head::Word(word)) => *word == W::JobTooBig,
            (Self::Use | Self::ListTubeUsed, Head::Using(_)) => true,
            (Self::Reserve | Self::ReserveWithTimeout, Head::Reserved { .. }) => true,
            // TIMED_OUT also answers a plain `reserve` when the client half-closes.
            (Self::Reserve | Self::ReserveWithTimeout, Head::Word(word)) => {
                matches!(word, W::DeadlineSoon | W::TimedOut)
            }
            (Self::ReserveJob, Head::Reserved { .. }) => true,
            (Self::Delete, Head::Word(word)) => matches!(word, W::Deleted | W::NotFound),
            (Self::Release, Head::Buried(None)) => true,
            (Self::Release, Head::Word(word)) => matches!(word, W::Released | W::NotFound),
            (Self::Bury, Head::Buried(None)) => true,
            (Self::Touch, Head::Word(word)) => matches!(word, W::Touched | W::NotFound),
            (Self::Watch | Self::Ignore, Head::Watching(_)) => true,
            (Self::Ignore, Head::Word(word)) => *word == W::NotIgnored,
            (
                Self::Peek | Self::PeekReady | Self::PeekDelayed | Self::PeekBuried,
                Head::Found { .. },
            ) => true,
            (Self::Kick, Head::Kicked(Some(_))) => true,
            (Self::KickJob, Head::Kicked(None)) => true,
            (Self::StatsJob | Self::StatsTube, Head::Ok { .. }) => true,
            (Self::Stats | Self::ListTubes | Self::ListTubesWatched, Head::Ok { .. }) => true,
            (Self::PauseTube, Head::Word(word)) => matches!(word, W::Paused | W::NotFound),
            (
                Self::ReserveJob
                | Self::Bury
                | Self::Peek
                | Self::PeekReady
                | Self::PeekDelayed
                | Self::PeekBuried
                | Self::KickJob
                | Self::StatsJob
                | Self::StatsTube,
                Head::Word(W::NotFound),
            ) => true,
            _ => false,
        }
    }
}

/// Writes `word`, then each number separated by a space, then CRLF.
///
/// The line is assembled on the stack and appended in one copy. Appended
/// piece by piece, it cost a capacity check and a `memcpy` call per piece:
/// about 400 instructions for a `put` (callgrind), the largest single item
/// of a pipelined put in user space. Always inlined, so that `word` is a
/// constant and its copy, like the zeroing of the buffer, is a few stores.
#[inline(always)]
pub(crate) fn encode_numbers<const N: usize>(dst: &mut WriteBuf, word: &str, numbers: [u64; N]) {
    /// Room for the longest word, four 20-digit numbers and CRLF.
    const ROOM: usize = 128;
    // A line that might not fit (none does) goes out piece by piece.
    if word.len() + N * (1 + U64_DIGITS) + 2 > ROOM {
        dst.put_slice(word.as_bytes());
        for n in numbers {
            dst.put_slice(b" ");
            dst.put_u64(n);
        }
        dst.put_crlf();
        return;
    }
    let mut line = [0u8; ROOM];
    let mut len = word.len();
    if let Some(start) = line.get_mut(..len) {
        start.copy_from_slice(word.as_bytes());
    }
    for n in numbers {
        if let Some(space) = line.get_mut(len) {
            *space = b' ';
        }
        len += 1;
        let digits = decimal_len(n);
        if let Some(slots) = line.get_mut(len..len + digits) {
            write_decimal(slots, n);
        }
        len += digits;
    }
    if let Some(end) = line.get_mut(len..len + 2) {
        end.copy_from_slice(b"\r\n");
    }
    dst.put_slice(line.get(..len + 2).unwrap_or_default());
}

/// Most decimal digits of a `u64`.
const U64_DIGITS: usize = 20;

/// Number of decimal digits of `n` (1 for zero).
#[inline(always)]
fn decimal_len(n: u64) -> usize {
    let mut len = 1;
    let mut bound = 10u64;
    while len < U64_DIGITS && n >= bound {
        len += 1;
        bound = bound.saturating_mul(10);
    }
    len
}

/// "00", "01", ... "99": two digits per division, which halves the
/// divisions of a number (each a multiply and shifts).
// Evaluated at compile time, where an index out of range fails the build.
#[allow(clippy::indexing_slicing)]
const DIGIT_PAIRS: [u8; 200] = {
    let mut pairs = [0u8; 200];
    let mut i = 0;
    while i < 100 {
        pairs[2 * i] = b'0' + (i / 10) as u8;
        pairs[2 * i + 1] = b'0' + (i % 10) as u8;
        i += 1;
    }
    pairs
};

/// Writes `n` in decimal into exactly `slots`, which is `decimal_len(n)`
/// bytes long.
#[inline(always)]
fn write_decimal(slots: &mut [u8], mut n: u64) {
    let mut end = slots.len();
    while end >= 2 {
        let pair = (n % 100) as usize * 2;
        n /= 100;
        if let (Some(dst), Some(src)) =
            (slots.get_mut(end - 2..end), DIGIT_PAIRS.get(pair..pair + 2))
        {
            dst.copy_from_slice(src);
        }
        end -= 2;
    }
    if let Some(first) = slots.first_mut().filter(|_| end == 1) {
        *first = b'0' + (n % 10) as u8;
    }
}

/// Writes `word <tube>` and the given numbers, then CRLF.
pub(crate) fn encode_tube(dst: &mut WriteBuf, word: &str, tube: &Tube, numbers: &[u64]) {
    dst.put_slice(word.as_bytes());
    dst.put_slice(b" ");
    dst.put_slice(tube.as_bytes());
    for &n in numbers {
        dst.put_slice(b" ");
        dst.put_u64(n);
    }
    dst.put_crlf();
}

/// Implements [`Request`] for a command whose success is one reply shape:
/// the encoding, the success pattern, and any overridden trait items.
macro_rules! request {
    (
        $ty:ty => $kind:ident -> $output:ty,
        encode(|$this:ident, $dst:ident| $encode:expr),
        reply($ok:pat => $value:expr)
        $(, $($extra:tt)*)?
    ) => {
        impl $crate::cmd::Request for $ty {
            type Output = $output;
            const KIND: $crate::cmd::CommandKind = $crate::cmd::CommandKind::$kind;

            fn encode(&self, $dst: &mut $crate::write_buf::WriteBuf) {
                let $this = self;
                $encode
            }

            fn from_response(
                response: $crate::response::Response,
            ) -> ::core::result::Result<Self::Output, $crate::error::Error> {
                #[allow(unused_imports)]
                use $crate::response::Response as R;
                match response {
                    $ok => Ok($value),
                    other => Err(other.into_error(Self::KIND)),
                }
            }

            $($($extra)*)?
        }
    };
}
pub(crate) use request;

#[cfg(test)]
mod tests {
    use alloc::string::String;

    use bytes::Buf;

    use super::*;

    /// No reply a command can get, whether it fits the command or breaks
    /// the connection as out of sync, is shorter than its kind's
    /// `shortest_reply`: every reply word, bare and with the shortest
    /// arguments, against every kind.
    #[test]
    fn no_reply_is_shorter_than_its_kinds_shortest() {
        use crate::error::ProtocolError;
        use crate::frame::{Limits, Status, parse_frame};

        let words = [
            "INSERTED",
            "BURIED",
            "EXPECTED_CRLF",
            "JOB_TOO_BIG",
            "DRAINING",
            "USING",
            "RESERVED",
            "DEADLINE_SOON",
            "TIMED_OUT",
            "DELETED",
            "NOT_FOUND",
            "RELEASED",
            "TOUCHED",
            "WATCHING",
            "NOT_IGNORED",
            "FOUND",
            "KICKED",
            "OK",
            "PAUSED",
            "OUT_OF_MEMORY",
            "INTERNAL_ERROR",
            "BAD_FORMAT",
            "UNKNOWN_COMMAND",
        ];
        let mut replies = Vec::new();
        for word in words {
            for arguments in ["", " 0", " 1", " x", " 0 0", " 1 0"] {
                replies.push(alloc::format!("{word}{arguments}\r\n\r\n"));
            }
        }
        let mut fits = 0;
        for kind in CommandKind::ALL {
            for reply in &replies {
                let Ok(Status::Complete(frame)) = parse_frame(reply.as_bytes(), &Limits::default())
                else {
                    continue;
                };
                let answers = !matches!(
                    kind.check_reply(&frame.head),
                    Err(ProtocolError::UnexpectedReply { .. })
                );
                if answers {
                    fits += 1;
                    let bytes = match frame.head {
                        Head::Reserved { len, .. } | Head::Found { len, .. } | Head::Ok { len } => {
                            frame.line_len + len + 2
                        }
                        _ => frame.line_len,
                    };
                    assert!(
                        bytes >= kind.shortest_reply(),
                        "{} gets {reply:?}: {bytes} bytes",
                        kind.name()
                    );
                }
            }
        }
        assert!(fits > 100, "{fits}");
    }

    /// Every digit count, at both ends: 10^k - 1 and 10^k.
    #[test]
    fn numbers_at_every_power_of_ten() {
        let mut numbers = alloc::vec![0, u64::MAX];
        let mut power = 1u64;
        while let Some(next) = power.checked_mul(10) {
            numbers.extend([next - 1, next]);
            power = next;
        }
        for chunk in numbers.chunks(4) {
            let [a, b, c, d] = [0, 1, 2, 3].map(|i| chunk.get(i).copied().unwrap_or(7));
            let mut out = WriteBuf::new();
            encode_numbers(&mut out, "put", [a, b, c, d]);
            let expected = alloc::format!("put {a} {b} {c} {d}\r\n");
            assert_eq!(out.chunk(), expected.as_bytes());
            out.advance(out.remaining());
            encode_numbers(&mut out, "release", [d]);
            encode_numbers(&mut out, "stats", []);
            let expected = alloc::format!("release {d}\r\nstats\r\n");
            assert_eq!(out.chunk(), expected.as_bytes());
        }
    }

    /// More numbers than the stack line holds (no command has them) go
    /// out piece by piece, the same bytes.
    #[test]
    fn a_line_too_long_for_the_stack_is_written_whole() {
        let mut out = WriteBuf::new();
        encode_numbers(&mut out, "reserve-with-timeout", [u64::MAX; 6]);
        let mut expected = String::from("reserve-with-timeout");
        for _ in 0..6 {
            expected.push_str(" 18446744073709551615");
        }
        expected.push_str("\r\n");
        assert_eq!(out.chunk(), expected.as_bytes());
    }
}
