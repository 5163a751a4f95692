//! Shared pieces of the fuzz targets: an `Arbitrary` description of every
//! command with unchecked arguments, an independent oracle for what each
//! constructor must accept and how each command must look on the wire, and
//! a checker for encoded command streams.
//!
//! The oracle is written from the protocol description, not from the
//! crate's code, so a disagreement is a finding.

use arbitrary::Arbitrary;
use beanstalk_proto::cmd::{self, Request};
use beanstalk_proto::{CommandError, PutOptions, Tube};
use bytes::Bytes;

/// The longest command line beanstalkd reads, CRLF included.
pub const MAX_COMMAND_LINE: usize = 224;

/// The tube-name alphabet of the protocol.
pub const TUBE_ALPHABET: &[u8] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-+/;.$_()";

/// A tube-name argument: raw (mostly invalid), or built from the alphabet
/// so that valid and boundary-length names are common.
#[derive(Arbitrary, Debug, Clone)]
pub enum TubeArg {
    /// Any string at all.
    Raw(String),
    /// Each byte mapped into the alphabet (so valid unless it starts with `-`).
    Alphabet(Vec<u8>),
    /// `len` copies of one alphabet byte: reaches the 200/201 boundary.
    Repeat {
        /// Name length.
        len: u8,
        /// Index into the alphabet.
        byte: u8,
    },
    /// A valid name with one arbitrary byte spliced in.
    Splice {
        /// Valid part.
        name: Vec<u8>,
        /// Where to put `byte`.
        at: u8,
        /// The spliced byte (ASCII only, to keep the name a `String`).
        byte: u8,
    },
}

/// How the name is handed to the constructor (`IntoTube` has several paths).
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum TubeVia {
    /// `&str`
    Str,
    /// `String`
    String,
    /// A `Tube` validated first with `Tube::new`.
    Tube,
}

impl TubeArg {
    /// The name as a string.
    pub fn name(&self) -> String {
        let map = |b: &u8| TUBE_ALPHABET[usize::from(*b) % TUBE_ALPHABET.len()] as char;
        match self {
            Self::Raw(s) => s.clone(),
            Self::Alphabet(bytes) => bytes.iter().map(map).collect(),
            Self::Repeat { len, byte } => {
                core::iter::repeat_n(map(byte), usize::from(*len)).collect()
            }
            Self::Splice { name, at, byte } => {
                let mut s: String = name.iter().map(map).collect();
                let at = usize::from(*at).min(s.len());
                s.insert(at, char::from(*byte & 0x7f));
                s
            }
        }
    }
}

/// The documented rules for a tube name: 1 to 200 bytes of
/// `A-Z a-z 0-9 - + / ; . $ _ ( )`, not starting with `-`.
pub fn expected_tube_error(name: &[u8]) -> Option<CommandError> {
    if name.is_empty() {
        Some(CommandError::EmptyTubeName)
    } else if name.len() > 200 {
        Some(CommandError::TubeNameTooLong { len: name.len() })
    } else if name[0] == b'-' {
        Some(CommandError::TubeNameLeadingHyphen)
    } else {
        name.iter()
            .position(|b| !TUBE_ALPHABET.contains(b))
            .map(|index| CommandError::TubeNameInvalidByte {
                byte: name[index],
                index,
            })
    }
}

/// A job body argument.
#[derive(Arbitrary, Debug, Clone)]
pub enum BodyArg {
    /// Arbitrary bytes (CR, LF and NUL included).
    Bytes(Vec<u8>),
    /// `len` copies of `byte`: crosses the job-size and zero-copy thresholds.
    Fill {
        /// Body length (taken modulo 70,000).
        len: u32,
        /// The byte.
        byte: u8,
    },
}

impl BodyArg {
    /// The body's bytes.
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            Self::Bytes(bytes) => bytes.clone(),
            Self::Fill { len, byte } => vec![*byte; (*len % 70_000) as usize],
        }
    }
}

/// One of the 25 commands with arbitrary (possibly invalid) arguments.
#[derive(Arbitrary, Debug, Clone)]
#[allow(missing_docs)]
pub enum Cmd {
    Put {
        body: BodyArg,
        /// Pass the body as shared `Bytes` (zero-copy path) or borrowed.
        shared: bool,
        priority: u32,
        delay: u32,
        ttr: u32,
    },
    Use(TubeArg, TubeVia),
    Reserve,
    ReserveWithTimeout(u32),
    ReserveJob(u64),
    Delete(u64),
    Release(u64, u32, u32),
    Bury(u64, u32),
    Touch(u64),
    Watch(TubeArg, TubeVia),
    Ignore(TubeArg, TubeVia),
    Peek(u64),
    PeekReady,
    PeekDelayed,
    PeekBuried,
    Kick(u32),
    KickJob(u64),
    StatsJob(u64),
    StatsTube(TubeArg, TubeVia),
    Stats,
    ListTubes,
    ListTubeUsed,
    ListTubesWatched,
    Quit,
    PauseTube(TubeArg, TubeVia, u32),
}

/// What the oracle says about one command.
#[derive(Debug, Clone)]
pub struct Expect {
    /// The error the constructor must return, or `None` if it must succeed.
    pub error: Option<CommandError>,
    /// The exact bytes `encode` must write when it succeeds (line, and for
    /// `put` body and CRLF).
    pub wire: Vec<u8>,
    /// The body length of a `put` (checked against the job-size limit).
    pub put_len: Option<usize>,
    /// The tube of `use`/`watch`/`ignore`, applied to the session when confirmed.
    pub session: Option<(SessionOp, String)>,
}

/// How a confirmed command changes the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionOp {
    /// `use`
    Use,
    /// `watch`
    Watch,
    /// `ignore`
    Ignore,
}

/// Receives each built command together with the oracle's expectation.
pub trait Visit {
    /// Called once per command; `built` is the constructor's result.
    fn visit<R: Request>(&mut self, built: Result<R, CommandError>, expect: Expect);
}

fn line(parts: &[&str]) -> Vec<u8> {
    let mut line = parts.join(" ").into_bytes();
    line.extend_from_slice(b"\r\n");
    line
}

fn tube_expect(word: &str, name: &str, numbers: &[u64], session: Option<SessionOp>) -> Expect {
    let numbers: Vec<String> = numbers.iter().map(u64::to_string).collect();
    let mut parts = vec![word, name];
    parts.extend(numbers.iter().map(String::as_str));
    Expect {
        error: expected_tube_error(name.as_bytes()),
        wire: line(&parts),
        put_len: None,
        session: session.map(|op| (op, name.to_owned())),
    }
}

fn plain(word: &str, numbers: &[u64]) -> Expect {
    let numbers: Vec<String> = numbers.iter().map(u64::to_string).collect();
    let mut parts = vec![word];
    parts.extend(numbers.iter().map(String::as_str));
    Expect {
        error: None,
        wire: line(&parts),
        put_len: None,
        session: None,
    }
}

/// Builds a tube-taking command through the chosen `IntoTube` path.
fn with_tube<R>(
    name: &str,
    via: TubeVia,
    build: impl FnOnce(Tube) -> Result<R, CommandError>,
    build_str: impl FnOnce(&str) -> Result<R, CommandError>,
    build_string: impl FnOnce(String) -> Result<R, CommandError>,
) -> Result<R, CommandError> {
    match via {
        TubeVia::Str => build_str(name),
        TubeVia::String => build_string(name.to_owned()),
        TubeVia::Tube => Tube::new(name).and_then(build),
    }
}

macro_rules! tube_cmd {
    ($ty:ty, $name:expr, $via:expr $(, $extra:expr)*) => {
        with_tube(
            $name,
            $via,
            |t| <$ty>::new(t $(, $extra)*),
            |t| <$ty>::new(t $(, $extra)*),
            |t| <$ty>::new(t $(, $extra)*),
        )
    };
}

impl Cmd {
    /// Builds the command, works out the oracle's expectation and hands both
    /// to `visitor`.
    pub fn apply<V: Visit>(&self, visitor: &mut V) {
        match self {
            Self::Put {
                body,
                shared,
                priority,
                delay,
                ttr,
            } => {
                let bytes = body.bytes();
                let options = PutOptions::default()
                    .priority(*priority)
                    .delay(*delay)
                    .ttr(*ttr);
                let mut wire =
                    format!("put {priority} {delay} {ttr} {}\r\n", bytes.len()).into_bytes();
                wire.extend_from_slice(&bytes);
                wire.extend_from_slice(b"\r\n");
                let expect = Expect {
                    error: None,
                    wire,
                    put_len: Some(bytes.len()),
                    session: None,
                };
                if *shared {
                    visitor.visit(cmd::Put::new(Bytes::from(bytes), options), expect);
                } else {
                    visitor.visit(cmd::Put::new(&bytes[..], options), expect);
                }
            }
            Self::Use(tube, via) => {
                let name = tube.name();
                let expect = tube_expect("use", &name, &[], Some(SessionOp::Use));
                visitor.visit(tube_cmd!(cmd::Use, &name, *via), expect);
            }
            Self::Watch(tube, via) => {
                let name = tube.name();
                let expect = tube_expect("watch", &name, &[], Some(SessionOp::Watch));
                visitor.visit(tube_cmd!(cmd::Watch, &name, *via), expect);
            }
            Self::Ignore(tube, via) => {
                let name = tube.name();
                let expect = tube_expect("ignore", &name, &[], Some(SessionOp::Ignore));
                visitor.visit(tube_cmd!(cmd::Ignore, &name, *via), expect);
            }
            Self::StatsTube(tube, via) => {
                let name = tube.name();
                let expect = tube_expect("stats-tube", &name, &[], None);
                visitor.visit(tube_cmd!(cmd::StatsTube, &name, *via), expect);
            }
            Self::PauseTube(tube, via, seconds) => {
                let name = tube.name();
                let expect = tube_expect("pause-tube", &name, &[u64::from(*seconds)], None);
                visitor.visit(tube_cmd!(cmd::PauseTube, &name, *via, *seconds), expect);
            }
            Self::ReserveWithTimeout(seconds) => {
                let mut expect = plain("reserve-with-timeout", &[u64::from(*seconds)]);
                if *seconds > i32::MAX as u32 {
                    expect.error = Some(CommandError::TimeoutTooLarge { seconds: *seconds });
                }
                visitor.visit(cmd::ReserveWithTimeout::new(*seconds), expect);
            }
            Self::Reserve => visitor.visit(Ok(cmd::Reserve), plain("reserve", &[])),
            Self::ReserveJob(id) => {
                visitor.visit(Ok(cmd::ReserveJob::new(*id)), plain("reserve-job", &[*id]))
            }
            Self::Delete(id) => visitor.visit(Ok(cmd::Delete::new(*id)), plain("delete", &[*id])),
            Self::Release(id, pri, delay) => visitor.visit(
                Ok(cmd::Release::new(*id, *pri, *delay)),
                plain("release", &[*id, u64::from(*pri), u64::from(*delay)]),
            ),
            Self::Bury(id, pri) => visitor.visit(
                Ok(cmd::Bury::new(*id, *pri)),
                plain("bury", &[*id, u64::from(*pri)]),
            ),
            Self::Touch(id) => visitor.visit(Ok(cmd::Touch::new(*id)), plain("touch", &[*id])),
            Self::Peek(id) => visitor.visit(Ok(cmd::Peek::new(*id)), plain("peek", &[*id])),
            Self::PeekReady => visitor.visit(Ok(cmd::PeekReady), plain("peek-ready", &[])),
            Self::PeekDelayed => visitor.visit(Ok(cmd::PeekDelayed), plain("peek-delayed", &[])),
            Self::PeekBuried => visitor.visit(Ok(cmd::PeekBuried), plain("peek-buried", &[])),
            Self::Kick(bound) => visitor.visit(
                Ok(cmd::Kick::new(*bound)),
                plain("kick", &[u64::from(*bound)]),
            ),
            Self::KickJob(id) => {
                visitor.visit(Ok(cmd::KickJob::new(*id)), plain("kick-job", &[*id]))
            }
            Self::StatsJob(id) => {
                visitor.visit(Ok(cmd::StatsJob::new(*id)), plain("stats-job", &[*id]))
            }
            Self::Stats => visitor.visit(Ok(cmd::Stats), plain("stats", &[])),
            Self::ListTubes => visitor.visit(Ok(cmd::ListTubes), plain("list-tubes", &[])),
            Self::ListTubeUsed => {
                visitor.visit(Ok(cmd::ListTubeUsed), plain("list-tube-used", &[]))
            }
            Self::ListTubesWatched => {
                visitor.visit(Ok(cmd::ListTubesWatched), plain("list-tubes-watched", &[]))
            }
            Self::Quit => visitor.visit(Ok(cmd::Quit), plain("quit", &[])),
        }
    }
}

/// Each command word and its arguments: `N` a number, `T` a tube name.
const GRAMMAR: &[(&str, &str)] = &[
    ("put", "NNNN"),
    ("use", "T"),
    ("reserve", ""),
    ("reserve-with-timeout", "N"),
    ("reserve-job", "N"),
    ("delete", "N"),
    ("release", "NNN"),
    ("bury", "NN"),
    ("touch", "N"),
    ("watch", "T"),
    ("ignore", "T"),
    ("peek", "N"),
    ("peek-ready", ""),
    ("peek-delayed", ""),
    ("peek-buried", ""),
    ("kick", "N"),
    ("kick-job", "N"),
    ("stats-job", "N"),
    ("stats-tube", "T"),
    ("stats", ""),
    ("list-tubes", ""),
    ("list-tube-used", ""),
    ("list-tubes-watched", ""),
    ("quit", ""),
    ("pause-tube", "TN"),
];

/// Checks that `stream` is a sequence of well-formed commands, independently
/// of how they were built, and returns how many there are.
///
/// Each line: at most 224 bytes with its CRLF, no other CR, LF or NUL,
/// tokens separated by single spaces, a known command word with the right
/// arguments, numbers in canonical decimal that fit their type. A `put`
/// line is followed by exactly the announced number of bytes and CRLF.
pub fn check_wire(mut stream: &[u8]) -> usize {
    let mut count = 0;
    while !stream.is_empty() {
        let lf = stream
            .iter()
            .position(|&b| b == b'\n')
            .expect("every command line ends with LF");
        let line_len = lf + 1;
        assert!(
            line_len <= MAX_COMMAND_LINE,
            "command line of {line_len} bytes"
        );
        let line = &stream[..lf];
        let text = line.strip_suffix(b"\r").expect("line ends with CRLF");
        assert!(
            !text.iter().any(|b| matches!(b, b'\r' | b'\n' | 0)),
            "CR, LF or NUL inside a command line: {text:?}"
        );
        let text = std::str::from_utf8(text).expect("command lines are ASCII");
        assert!(text.is_ascii());
        let mut tokens = text.split(' ');
        let word = tokens.next().unwrap_or_default();
        let args: Vec<&str> = tokens.collect();
        assert!(
            args.iter().all(|a| !a.is_empty()),
            "double or trailing space: {text:?}"
        );
        let shape = GRAMMAR
            .iter()
            .find(|(w, _)| *w == word)
            .unwrap_or_else(|| panic!("unknown command word {word:?}"))
            .1;
        assert_eq!(args.len(), shape.len(), "argument count of {text:?}");
        let mut numbers = Vec::new();
        for (arg, kind) in args.iter().zip(shape.chars()) {
            match kind {
                'N' => {
                    let n: u64 = arg.parse().unwrap_or_else(|_| panic!("not a u64: {arg:?}"));
                    assert_eq!(n.to_string(), *arg, "non-canonical number {arg:?}");
                    numbers.push(n);
                }
                _ => assert_eq!(
                    expected_tube_error(arg.as_bytes()),
                    None,
                    "invalid tube {arg:?}"
                ),
            }
        }
        // Every number but job ids is a u32 on the wire; reserve timeouts fit an i32.
        let u32_args: &[usize] = match word {
            "put" | "kick" | "pause-tube" => &[0, 1, 2, 3],
            "release" | "bury" => &[1, 2],
            "reserve-with-timeout" => &[0],
            _ => &[],
        };
        for &i in u32_args {
            if let Some(&n) = numbers.get(i) {
                assert!(n <= u64::from(u32::MAX), "{word} argument {n} exceeds u32");
            }
        }
        if word == "reserve-with-timeout" {
            assert!(
                numbers[0] <= i32::MAX as u64,
                "reserve timeout {} exceeds i32",
                numbers[0]
            );
        }
        stream = &stream[line_len..];
        if word == "put" {
            let len = usize::try_from(numbers[3]).expect("body length fits usize");
            assert!(stream.len() >= len + 2, "put body shorter than announced");
            assert_eq!(
                &stream[len..len + 2],
                b"\r\n",
                "put body not followed by CRLF"
            );
            stream = &stream[len + 2..];
        }
        count += 1;
    }
    count
}
