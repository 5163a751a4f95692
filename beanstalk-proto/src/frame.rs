//! Stateless framing of server replies: one reply line and, for the three
//! replies that carry one, its body.
//!
//! Beanstalk framing needs no context: the reply word alone says whether a
//! body follows (`RESERVED <id> <n>`, `FOUND <id> <n>`, `OK <n>`). This
//! module therefore works on a plain byte slice and never allocates; it is
//! the entry point for anyone who brings their own buffers (io_uring,
//! embedded) and the first fuzz target. [`crate::Connection`] adds the
//! context: which command each reply answers, and so which reply to try
//! first (`INSERTED <id>` after a `put`), read in one pass before this
//! module's general parser is asked.
//!
//! ```
//! use beanstalk_proto::frame::{parse_frame, Head, Limits, Status};
//!
//! let limits = Limits::default();
//! // A partial reply is not an error: more bytes are needed.
//! assert_eq!(parse_frame(b"RESERVED 7 5\r\nhel", &limits), Ok(Status::Partial));
//! let Status::Complete(frame) = parse_frame(b"RESERVED 7 5\r\nhello\r\nINSERTED", &limits)? else {
//!     unreachable!()
//! };
//! assert_eq!(frame.head, Head::Reserved { id: 7, len: 5 });
//! assert_eq!(frame.body(b"RESERVED 7 5\r\nhello\r\n"), Some(&b"hello"[..]));
//! assert_eq!(frame.len, 21);
//! # Ok::<(), beanstalk_proto::ProtocolError>(())
//! ```

use crate::error::ProtocolError;
use crate::tube::is_valid_tube_name;

/// The longest reply line a server can send, CRLF included:
/// `USING <200-byte name>\r\n`.
pub const MAX_REPLY_LINE: usize = "USING ".len() + crate::tube::MAX_TUBE_NAME_LEN + 2;

/// Caps on the bodies a reply may announce. A reply over its cap is a
/// [`ProtocolError::BodyTooLarge`], never an allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest job body accepted in `RESERVED`/`FOUND` replies.
    pub max_job_body: usize,
    /// Largest `OK` body (stats and tube lists).
    pub max_yaml_body: usize,
}

impl Limits {
    /// Limits with the given job-body cap and the default YAML cap.
    pub const fn with_max_job_body(max_job_body: usize) -> Self {
        Self {
            max_job_body,
            max_yaml_body: DEFAULT_MAX_YAML_BODY,
        }
    }
}

/// Default cap for `OK` bodies: room for stats and for a list of thousands of
/// tubes with long names.
pub const DEFAULT_MAX_YAML_BODY: usize = 1 << 20;

impl Default for Limits {
    /// 65,535-byte job bodies (the server's default `max-job-size`) and
    /// 1 MiB YAML bodies.
    fn default() -> Self {
        Self::with_max_job_body(crate::config::DEFAULT_MAX_JOB_SIZE as usize)
    }
}

/// The outcome of a parse attempt: a whole frame, or a need for more bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status<T> {
    /// A whole frame was found at the start of the buffer.
    Complete(T),
    /// The buffer holds the beginning of a frame; read more bytes.
    Partial,
}

/// The first word of a reply line, without its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[allow(missing_docs)] // each variant is its wire word, given by `as_str`
pub enum ReplyWord {
    Inserted,
    Buried,
    ExpectedCrlf,
    JobTooBig,
    Draining,
    Using,
    Reserved,
    DeadlineSoon,
    TimedOut,
    Deleted,
    NotFound,
    Released,
    Touched,
    Watching,
    NotIgnored,
    Found,
    Kicked,
    Ok,
    Paused,
    OutOfMemory,
    InternalError,
    BadFormat,
    UnknownCommand,
}

impl ReplyWord {
    /// Every reply word, for tests and fuzzing dictionaries.
    ///
    /// ```
    /// use beanstalk_proto::frame::ReplyWord;
    ///
    /// assert!(ReplyWord::ALL.iter().any(|word| word.as_str() == "DEADLINE_SOON"));
    /// ```
    pub const ALL: [Self; 23] = [
        Self::Inserted,
        Self::Buried,
        Self::ExpectedCrlf,
        Self::JobTooBig,
        Self::Draining,
        Self::Using,
        Self::Reserved,
        Self::DeadlineSoon,
        Self::TimedOut,
        Self::Deleted,
        Self::NotFound,
        Self::Released,
        Self::Touched,
        Self::Watching,
        Self::NotIgnored,
        Self::Found,
        Self::Kicked,
        Self::Ok,
        Self::Paused,
        Self::OutOfMemory,
        Self::InternalError,
        Self::BadFormat,
        Self::UnknownCommand,
    ];

    /// The word as it appears on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Inserted => "INSERTED",
            Self::Buried => "BURIED",
            Self::ExpectedCrlf => "EXPECTED_CRLF",
            Self::JobTooBig => "JOB_TOO_BIG",
            Self::Draining => "DRAINING",
            Self::Using => "USING",
            Self::Reserved => "RESERVED",
            Self::DeadlineSoon => "DEADLINE_SOON",
            Self::TimedOut => "TIMED_OUT",
            Self::Deleted => "DELETED",
            Self::NotFound => "NOT_FOUND",
            Self::Released => "RELEASED",
            Self::Touched => "TOUCHED",
            Self::Watching => "WATCHING",
            Self::NotIgnored => "NOT_IGNORED",
            Self::Found => "FOUND",
            Self::Kicked => "KICKED",
            Self::Ok => "OK",
            Self::Paused => "PAUSED",
            Self::OutOfMemory => "OUT_OF_MEMORY",
            Self::InternalError => "INTERNAL_ERROR",
            Self::BadFormat => "BAD_FORMAT",
            Self::UnknownCommand => "UNKNOWN_COMMAND",
        }
    }

    fn from_wire(word: &[u8]) -> Option<Self> {
        Some(match word {
            b"INSERTED" => Self::Inserted,
            b"BURIED" => Self::Buried,
            b"EXPECTED_CRLF" => Self::ExpectedCrlf,
            b"JOB_TOO_BIG" => Self::JobTooBig,
            b"DRAINING" => Self::Draining,
            b"USING" => Self::Using,
            b"RESERVED" => Self::Reserved,
            b"DEADLINE_SOON" => Self::DeadlineSoon,
            b"TIMED_OUT" => Self::TimedOut,
            b"DELETED" => Self::Deleted,
            b"NOT_FOUND" => Self::NotFound,
            b"RELEASED" => Self::Released,
            b"TOUCHED" => Self::Touched,
            b"WATCHING" => Self::Watching,
            b"NOT_IGNORED" => Self::NotIgnored,
            b"FOUND" => Self::Found,
            b"KICKED" => Self::Kicked,
            b"OK" => Self::Ok,
            b"PAUSED" => Self::Paused,
            b"OUT_OF_MEMORY" => Self::OutOfMemory,
            b"INTERNAL_ERROR" => Self::InternalError,
            b"BAD_FORMAT" => Self::BadFormat,
            b"UNKNOWN_COMMAND" => Self::UnknownCommand,
            _ => return None,
        })
    }
}

/// A parsed reply line. Borrowed from the input; no allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Head<'a> {
    /// `INSERTED <id>`
    Inserted(u64),
    /// `BURIED <id>` (after `put`) or `BURIED` (after `bury`/`release`).
    Buried(Option<u64>),
    /// `USING <tube>`; the name has been checked against the tube charset.
    Using(&'a str),
    /// `RESERVED <id> <bytes>`, followed by a body.
    Reserved {
        /// Job id.
        id: u64,
        /// Body length.
        len: usize,
    },
    /// `FOUND <id> <bytes>`, followed by a body.
    Found {
        /// Job id.
        id: u64,
        /// Body length.
        len: usize,
    },
    /// `OK <bytes>`, followed by a YAML body.
    Ok {
        /// Body length.
        len: usize,
    },
    /// `WATCHING <count>`
    Watching(u64),
    /// `KICKED <count>` (after `kick`) or `KICKED` (after `kick-job`).
    Kicked(Option<u64>),
    /// Any reply without arguments.
    Word(ReplyWord),
}

impl Head<'_> {
    /// The reply's first word.
    pub const fn word(&self) -> ReplyWord {
        match self {
            Self::Inserted(_) => ReplyWord::Inserted,
            Self::Buried(_) => ReplyWord::Buried,
            Self::Using(_) => ReplyWord::Using,
            Self::Reserved { .. } => ReplyWord::Reserved,
            Self::Found { .. } => ReplyWord::Found,
            Self::Ok { .. } => ReplyWord::Ok,
            Self::Watching(_) => ReplyWord::Watching,
            Self::Kicked(_) => ReplyWord::Kicked,
            Self::Word(word) => *word,
        }
    }

    /// Length of the body that follows this line, if any.
    pub const fn body_len(&self) -> Option<usize> {
        match self {
            Self::Reserved { len, .. } | Self::Found { len, .. } | Self::Ok { len } => Some(*len),
            _ => None,
        }
    }
}

/// One whole reply at the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The parsed reply line.
    pub head: Head<'a>,
    /// Length of the reply line including its CRLF; the body, if any,
    /// starts here.
    pub line_len: usize,
    /// Total length of the frame: line, body and the body's CRLF.
    pub len: usize,
}

impl Frame<'_> {
    /// The body inside `buf` (the buffer this frame was parsed from);
    /// `None` for a reply without one, or a frame that does not fit `buf`.
    pub fn body<'b>(&self, buf: &'b [u8]) -> Option<&'b [u8]> {
        let len = self.head.body_len()?;
        // The fields are public: a frame made by hand may not add up.
        buf.get(self.line_len..self.line_len.checked_add(len)?)
    }
}

/// Finds the end of the reply line at the start of `buf`.
///
/// Returns the line length including CRLF, `None` if no line end has arrived
/// yet. Only CRLF ends a line: a bare LF, or a CR inside the line, is an
/// error, and so is a line longer than any reply.
pub fn find_line_end(buf: &[u8]) -> Result<Option<usize>, ProtocolError> {
    let window = buf.get(..MAX_REPLY_LINE).unwrap_or(buf);
    // A complete line, the usual case, in one search: the first CR or LF
    // is a CR, and an LF follows it. Anything else is told apart below.
    if let Some(end) = memchr::memchr2(b'\r', b'\n', window) {
        if window.get(end..end + 2) == Some(b"\r\n") {
            return Ok(Some(end + 2));
        }
    }
    match memchr::memchr(b'\n', window) {
        Some(lf) => {
            let line = window.get(..lf).unwrap_or_default();
            match line.split_last() {
                Some((b'\r', text)) if memchr::memchr(b'\r', text).is_none() => Ok(Some(lf + 1)),
                _ => Err(ProtocolError::BadLineEnding),
            }
        }
        None if window.len() >= MAX_REPLY_LINE => Err(ProtocolError::LineTooLong {
            max: MAX_REPLY_LINE,
        }),
        // A CR anywhere but at the very end can never become a CRLF line end.
        None => match memchr::memchr(b'\r', window) {
            Some(cr) if cr + 1 != window.len() => Err(ProtocolError::BadLineEnding),
            _ => Ok(None),
        },
    }
}

/// Parses one reply (line and body) at the start of `buf`.
///
/// Never allocates, never panics, and rejects anything a beanstalkd server
/// would not send. A body larger than its cap in `limits` is rejected as
/// soon as its line arrives, before any of it is buffered.
pub fn parse_frame<'a>(buf: &'a [u8], limits: &Limits) -> Result<Status<Frame<'a>>, ProtocolError> {
    match parse_head(buf, limits)? {
        Status::Complete((head, line_len)) => frame_after_line(buf, head, line_len, limits),
        Status::Partial => Ok(Status::Partial),
    }
}

/// Parses the line of the reply at the start of `buf`, whether or not its
/// body is in yet: the head and the line's length with its CRLF.
pub(crate) fn parse_head<'a>(
    buf: &'a [u8],
    limits: &Limits,
) -> Result<Status<(Head<'a>, usize)>, ProtocolError> {
    if let Some(parsed) = parse_plain_line(buf, limits) {
        return parsed.map(Status::Complete);
    }
    let Some(line_len) = find_line_end(buf)? else {
        return Ok(Status::Partial);
    };
    let line = buf.get(..line_len - 2).unwrap_or_default();
    Ok(Status::Complete((parse_line(line, limits)?, line_len)))
}

/// The frame whose line, `line_len` bytes with its CRLF, was parsed into
/// `head`: partial until its body (if it has one) is in `buf` too.
#[inline(always)]
pub(crate) fn frame_after_line<'a>(
    buf: &[u8],
    head: Head<'a>,
    line_len: usize,
    limits: &Limits,
) -> Result<Status<Frame<'a>>, ProtocolError> {
    let len = match head.body_len() {
        None => line_len,
        Some(body_len) => {
            // A cap near usize::MAX must not make this wrap around.
            let end = line_len
                .checked_add(body_len)
                .and_then(|n| n.checked_add(2))
                .ok_or(ProtocolError::BodyTooLarge {
                    len: body_len as u64,
                    max: limits.max_job_body.max(limits.max_yaml_body),
                })?;
            let Some(frame) = buf.get(..end) else {
                // A trailer whose first byte is wrong fails now: a peer
                // that then sends nothing more would otherwise hold the
                // command until its timeout, or for ever without one.
                if buf.get(end - 2).is_some_and(|&byte| byte != b'\r') {
                    return Err(ProtocolError::BodyNotTerminated);
                }
                return Ok(Status::Partial);
            };
            if !frame.ends_with(b"\r\n") {
                return Err(ProtocolError::BodyNotTerminated);
            }
            end
        }
    };
    Ok(Status::Complete(Frame {
        head,
        line_len,
        len,
    }))
}

/// Parses a reply line without its CRLF.
pub fn parse_line<'a>(line: &'a [u8], limits: &Limits) -> Result<Head<'a>, ProtocolError> {
    // Reply words are short: a plain scan beats a vectorised search here.
    let (word, args) = match line.iter().position(|&byte| byte == b' ') {
        Some(space) => (
            line.get(..space).unwrap_or_default(),
            Some(line.get(space + 1..).unwrap_or_default()),
        ),
        None => (line, None),
    };
    let word = ReplyWord::from_wire(word).ok_or(ProtocolError::UnknownReply)?;
    let malformed = ProtocolError::MalformedReply(word);
    if word == ReplyWord::Using {
        return match args {
            // The charset is ASCII, so this never fails; the fallback keeps it panic-free.
            Some(name) if is_valid_tube_name(name) => Ok(Head::Using(
                core::str::from_utf8(name).map_err(|_| malformed)?,
            )),
            _ => Err(malformed),
        };
    }
    let numbers = match args {
        None => Numbers::None,
        Some(args) => match args.iter().position(|&byte| byte == b' ') {
            None => Numbers::One(parse_u64(args).ok_or(malformed)?),
            Some(space) => Numbers::Two(
                args.get(..space).and_then(parse_u64).ok_or(malformed)?,
                args.get(space + 1..).and_then(parse_u64).ok_or(malformed)?,
            ),
        },
    };
    numeric_head(word, numbers, limits)
}

/// The arguments of a reply line other than `USING`'s: at most two
/// numbers (a line with more, or with anything else, is malformed).
#[derive(Clone, Copy)]
enum Numbers {
    None,
    One(u64),
    Two(u64, u64),
}

/// The head of any reply but `USING`, from its word and numbers; the one
/// place that knows which word takes which arguments, for both parsers.
#[inline(always)]
fn numeric_head(
    word: ReplyWord,
    numbers: Numbers,
    limits: &Limits,
) -> Result<Head<'static>, ProtocolError> {
    Ok(match (word, numbers) {
        (ReplyWord::Inserted, Numbers::One(id)) => Head::Inserted(id),
        (ReplyWord::Buried, Numbers::None) => Head::Buried(None),
        (ReplyWord::Buried, Numbers::One(id)) => Head::Buried(Some(id)),
        (ReplyWord::Watching, Numbers::One(count)) => Head::Watching(count),
        (ReplyWord::Kicked, Numbers::None) => Head::Kicked(None),
        (ReplyWord::Kicked, Numbers::One(count)) => Head::Kicked(Some(count)),
        (ReplyWord::Reserved, Numbers::Two(id, len)) => Head::Reserved {
            id,
            len: body_len(len, limits.max_job_body)?,
        },
        (ReplyWord::Found, Numbers::Two(id, len)) => Head::Found {
            id,
            len: body_len(len, limits.max_job_body)?,
        },
        (ReplyWord::Ok, Numbers::One(len)) => Head::Ok {
            len: body_len(len, limits.max_yaml_body)?,
        },
        (
            ReplyWord::ExpectedCrlf
            | ReplyWord::JobTooBig
            | ReplyWord::Draining
            | ReplyWord::DeadlineSoon
            | ReplyWord::TimedOut
            | ReplyWord::Deleted
            | ReplyWord::NotFound
            | ReplyWord::Released
            | ReplyWord::Touched
            | ReplyWord::NotIgnored
            | ReplyWord::Paused
            | ReplyWord::OutOfMemory
            | ReplyWord::InternalError
            | ReplyWord::BadFormat
            | ReplyWord::UnknownCommand,
            Numbers::None,
        ) => Head::Word(word),
        _ => return Err(ProtocolError::MalformedReply(word)),
    })
}

/// The head of a job reply whose body is past this client's cap
/// (`RESERVED <id> <bytes>` or `FOUND <id> <bytes>`): its head as the
/// command checks it, the job's id, the body's length, and the line's
/// length with its CRLF. `None` for any other line, and for a length no
/// beanstalkd gives (its jobs are at most 1 GiB,
/// [`MAX_SERVER_JOB_SIZE`](crate::config::MAX_SERVER_JOB_SIZE)), which
/// only a broken peer sends.
pub(crate) fn oversized_job_head(buf: &[u8]) -> Option<(Head<'static>, u64, u64, usize)> {
    // The general parser, which reported the line too large: the single
    // pass stops at 19 digits, and an id takes up to 20 (a job past the
    // cap with id 10^19 or more broke the connection).
    let line_len = find_line_end(buf).ok()??;
    let line = buf.get(..line_len.checked_sub(2)?)?;
    let ceiling = usize::try_from(crate::config::MAX_SERVER_JOB_SIZE).unwrap_or(usize::MAX);
    // The head's length stays 0: no body is kept.
    let (head, id, len) = match parse_line(line, &Limits::with_max_job_body(ceiling)).ok()? {
        Head::Reserved { id, len } => (Head::Reserved { id, len: 0 }, id, len),
        Head::Found { id, len } => (Head::Found { id, len: 0 }, id, len),
        _ => return None,
    };
    Some((head, id, u64::try_from(len).ok()?, line_len))
}

/// `N` numbers after `prefix` (a reply word and a space), separated by
/// single spaces and ended by CRLF, as in `RESERVED 7 5\r\n`: the numbers
/// and the line's length with its CRLF. `None` for anything else, a
/// partial line included; [`parse_frame`] then takes the line in full,
/// and agrees with this on every line this takes.
///
/// The fast path for the replies a command usually gets
/// ([`crate::cmd::CommandKind::parse_usual_reply`]): it knows which word
/// to expect, where [`parse_frame`] must find out, which was most of the
/// cost of decoding a reply (callgrind).
#[inline(always)]
pub(crate) fn parse_numbers_after<const N: usize>(
    buf: &[u8],
    prefix: &[u8],
) -> Option<([u64; N], usize)> {
    let mut numbers = [0u64; N];
    let mut at = prefix.len();
    if buf.get(..at)? != prefix {
        return None;
    }
    for (index, number) in numbers.iter_mut().enumerate() {
        let separator = if index + 1 == N { b'\r' } else { b' ' };
        let (n, end) = number_at(buf, at)?;
        *number = n;
        match buf.get(end) {
            Some(byte) if *byte == separator => at = end + 1,
            _ => return None,
        }
    }
    (buf.get(at) == Some(&b'\n')).then_some((numbers, at + 1))
}

/// The number whose digits start at `buf[start]`, and where they end: at
/// least one digit and at most [`SAFE_DIGITS`], so it never overflows.
/// `None` for no digit or more than that (the general path takes those).
#[inline(always)]
fn number_at(buf: &[u8], start: usize) -> Option<(u64, usize)> {
    let mut at = start;
    let mut n = 0u64;
    while let Some(digit) = buf.get(at).map(|byte| byte.wrapping_sub(b'0')) {
        if digit > 9 {
            break;
        }
        if at - start == SAFE_DIGITS {
            return None;
        }
        n = n * 10 + u64::from(digit);
        at += 1;
    }
    (at > start).then_some((n, at))
}

/// Most digits a number can have and still never overflow a `u64`.
const SAFE_DIGITS: usize = 19;

/// The usual reply line, parsed in a single pass over `buf`: a known word,
/// at most two numbers of at most [`SAFE_DIGITS`] digits, each after one
/// space, and CRLF. Returns the head and the line's length with its CRLF,
/// or `None` for any other line, a partial one included, which
/// [`find_line_end`] and [`parse_line`] then take in full. On the lines it
/// takes it agrees with them: same word, same numbers, same
/// [`numeric_head`]. It exists because a reply of a few bytes is otherwise
/// scanned three times (line end, word, numbers), and that showed as the
/// largest part of decoding a reply (callgrind).
#[inline(always)]
fn parse_plain_line<'a>(
    buf: &[u8],
    limits: &Limits,
) -> Option<Result<(Head<'a>, usize), ProtocolError>> {
    // Words are capitals and `_`; what ends one (space, CR, a digit) sorts
    // below `A`. Any other byte at or above `A` makes an unknown word. The
    // longest word has 15 bytes, so its end is within the first 16.
    let word_len = buf
        .get(..16)
        .unwrap_or(buf)
        .iter()
        .position(|&byte| byte < b'A')?;
    let word = ReplyWord::from_wire(buf.get(..word_len)?)?;
    if word == ReplyWord::Using {
        return None;
    }
    let mut at = word_len;
    let mut numbers = Numbers::None;
    while buf.get(at) == Some(&b' ') {
        let (n, end) = number_at(buf, at + 1)?;
        at = end;
        numbers = match numbers {
            Numbers::None => Numbers::One(n),
            Numbers::One(first) => Numbers::Two(first, n),
            Numbers::Two(..) => return None,
        };
    }
    if buf.get(at..at + 2)? != b"\r\n" {
        return None;
    }
    Some(numeric_head(word, numbers, limits).map(|head| (head, at + 2)))
}

fn body_len(len: u64, max: usize) -> Result<usize, ProtocolError> {
    match usize::try_from(len) {
        Ok(n) if n <= max => Ok(n),
        _ => Err(ProtocolError::BodyTooLarge { len, max }),
    }
}

/// Decimal digits only (no sign, no spaces), at least one, no overflow.
fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &byte| {
        let digit = byte.checked_sub(b'0').filter(|d| *d <= 9)?;
        acc.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn numbers_are_strict() {
        assert_eq!(parse_u64(b"0"), Some(0));
        assert_eq!(parse_u64(b"007"), Some(7));
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(parse_u64(b""), None);
        assert_eq!(parse_u64(b"+1"), None);
        assert_eq!(parse_u64(b"1 "), None);
        assert_eq!(parse_u64(b"1a"), None);
    }

    #[test]
    fn max_reply_line_is_using_with_longest_name() {
        assert_eq!(MAX_REPLY_LINE, 208);
    }

    #[test]
    fn every_word_reads_back() {
        for word in ReplyWord::ALL {
            assert_eq!(ReplyWord::from_wire(word.as_str().as_bytes()), Some(word));
        }
    }

    /// What the general path (line end, then line) makes of `buf`.
    fn general<'a>(
        buf: &'a [u8],
        limits: &Limits,
    ) -> Result<Option<(Head<'a>, usize)>, ProtocolError> {
        let Some(line_len) = find_line_end(buf)? else {
            return Ok(None);
        };
        let line = buf.get(..line_len - 2).unwrap_or_default();
        Ok(Some((parse_line(line, limits)?, line_len)))
    }

    #[test]
    fn the_usual_replies_take_the_single_pass() {
        let limits = Limits::default();
        for line in [
            "INSERTED 18446744073\r\n",
            "BURIED 7\r\n",
            "BURIED\r\n",
            "RESERVED 12 100\r\n",
            "FOUND 0 0\r\n",
            "OK 940\r\n",
            "DELETED\r\n",
            "TIMED_OUT\r\n",
            "KICKED 3\r\n",
            "WATCHING 2\r\n",
            "DELETED 5\r\n",
            "RESERVED 1 99999999\r\n",
        ] {
            let fast = parse_plain_line(line.as_bytes(), &limits);
            assert!(fast.is_some(), "{line:?} took the general path");
            assert_eq!(
                fast.map(|r| r.map(Some)),
                Some(general(line.as_bytes(), &limits))
            );
        }
        // Left to the general path: tube names, the 20th digit, partial lines.
        for line in [
            "USING a\r\n",
            "OK 18446744073709551615\r\n",
            "INSERTED 5\r",
            "INSERTED 5",
        ] {
            assert!(
                parse_plain_line(line.as_bytes(), &Limits::default()).is_none(),
                "{line:?}"
            );
        }
    }

    /// Reply lines, mostly well formed: a word (rarely an unknown one),
    /// up to three numbers (rarely too long, empty or with two spaces), a
    /// line end (rarely a wrong one), then whatever follows.
    fn reply_line() -> impl Strategy<Value = Vec<u8>> {
        lines_of(prop_oneof![
            9 => prop::sample::select(ReplyWord::ALL.to_vec()).prop_map(|w| w.as_str().to_owned()),
            1 => "[A-Z_]{1,16}",
        ])
    }

    /// Reply lines as [`reply_line`] makes them, with words from `word`.
    fn lines_of(word: impl Strategy<Value = String>) -> impl Strategy<Value = Vec<u8>> {
        let space = prop_oneof![8 => Just(" "), 1 => Just("  "), 1 => Just("")];
        let number = prop_oneof![8 => "[0-9]{1,6}", 2 => "[0-9]{0,22}"];
        let end = prop_oneof![
            8 => Just("\r\n"),
            1 => Just(""),
            1 => Just("\r"),
            1 => Just("\n"),
            1 => Just(" \r\n"),
        ];
        (
            word,
            prop::collection::vec((space, number), 0..4),
            end,
            prop::collection::vec(any::<u8>(), 0..4),
        )
            .prop_map(|(word, args, end, rest)| {
                let mut line = word.into_bytes();
                for (space, number) in args {
                    line.extend_from_slice(space.as_bytes());
                    line.extend_from_slice(number.as_bytes());
                }
                line.extend_from_slice(end.as_bytes());
                line.extend_from_slice(&rest);
                line
            })
    }

    #[test]
    fn each_command_recognises_its_usual_reply() {
        use crate::cmd::CommandKind;

        let limits = Limits::default();
        for (kind, reply, head) in [
            (
                CommandKind::Put,
                "INSERTED 18446744073\r\n",
                Head::Inserted(18_446_744_073),
            ),
            (
                CommandKind::Reserve,
                "RESERVED 12 100\r\n",
                Head::Reserved { id: 12, len: 100 },
            ),
            (
                CommandKind::ReserveWithTimeout,
                "RESERVED 0 0\r\n",
                Head::Reserved { id: 0, len: 0 },
            ),
            (
                CommandKind::ReserveJob,
                "RESERVED 7 5\r\nhello\r\n",
                Head::Reserved { id: 7, len: 5 },
            ),
            (
                CommandKind::Delete,
                "DELETED\r\nINSERTED 1\r\n",
                Head::Word(ReplyWord::Deleted),
            ),
        ] {
            let line_len = reply.find("\r\n").map(|at| at + 2);
            assert_eq!(
                kind.parse_usual_reply(reply.as_bytes(), &limits),
                line_len.map(|len| (head, len)),
                "{reply:?}"
            );
        }
        // Anything else is left to the general path.
        for (kind, reply) in [
            (CommandKind::Put, "BURIED 7\r\n"),
            (CommandKind::Put, "INSERTED 5\r"),
            (CommandKind::Put, "INSERTED \r\n"),
            (CommandKind::Put, "INSERTED 5 6\r\n"),
            (CommandKind::Put, "INSERTED 12345678901234567890\r\n"),
            (CommandKind::Reserve, "RESERVED 1 65536\r\n"),
            (CommandKind::Reserve, "RESERVED 1\r\n"),
            (CommandKind::Reserve, "TIMED_OUT\r\n"),
            (CommandKind::Delete, "DELETED"),
            (CommandKind::Delete, "INSERTED 1\r\n"),
            (CommandKind::Release, "RELEASED\r\n"),
        ] {
            assert_eq!(
                kind.parse_usual_reply(reply.as_bytes(), &limits),
                None,
                "{reply:?}"
            );
        }
    }

    proptest! {
        // Lines near a usual reply but not quite one (a 20th digit, a body
        // over the cap) are a small share of cases: enough cases to meet them.
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// Wherever a command's usual reply is recognised, the general
        /// path reads the same head and length, and the command accepts it.
        #[test]
        fn the_usual_reply_agrees_with_the_general_path(
            // Mostly the words of the usual replies, so that most cases
            // come near one; any line, for any command, now and then.
            (buf, kind) in prop_oneof![
                4 => (
                    lines_of(prop::sample::select(vec!["INSERTED", "RESERVED", "DELETED"]).prop_map(String::from)),
                    prop::sample::select(vec![
                        crate::cmd::CommandKind::Put,
                        crate::cmd::CommandKind::Reserve,
                        crate::cmd::CommandKind::ReserveWithTimeout,
                        crate::cmd::CommandKind::ReserveJob,
                        crate::cmd::CommandKind::Delete,
                    ]),
                ),
                1 => (reply_line(), prop::sample::select(crate::cmd::CommandKind::ALL.to_vec())),
            ],
            max_job_body in prop::sample::select(vec![0usize, 100, 65_535, usize::MAX]),
        ) {
            let limits = Limits::with_max_job_body(max_job_body);
            if let Some(usual) = kind.parse_usual_reply(&buf, &limits) {
                prop_assert_eq!(Ok(Some(usual)), general(&buf, &limits));
                prop_assert_eq!(kind.check_reply(&usual.0), Ok(()));
            }
        }
    }

    proptest! {

        /// Wherever the single pass decides, it decides as the general path
        /// would: same head, same length, same error.
        #[test]
        fn the_single_pass_agrees_with_the_general_path(
            buf in reply_line(),
            max_job_body in prop::sample::select(vec![0usize, 100, 65_535, usize::MAX]),
        ) {
            let limits = Limits::with_max_job_body(max_job_body);
            if let Some(fast) = parse_plain_line(&buf, &limits) {
                prop_assert_eq!(fast.map(Some), general(&buf, &limits));
            }
        }
    }
}
