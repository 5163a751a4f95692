//! Property tests: (a) any stream of well-formed replies to any pipeline of
//! commands decodes to the same typed results however it is cut into
//! chunks; (b) for arbitrary constructor arguments a command is either
//! refused with a `CommandError` or encodes to a well-formed line (≤ 224
//! bytes, one CRLF, single spaces, valid tube names, plain decimals, and for
//! `put` the exact body and CRLF).

mod common;

use beanstalk_proto::{CommandError, Config, Connection, PutOptions, Request, WriteBuf, cmd};
use common::{Outcome, Step, drain, oracle, pair_strategy, run_pipeline};
use proptest::prelude::*;

/// `cases` cases with the XorShift generator: ChaCha, the default, is by far
/// the slowest part of these tests in a debug build.
fn fast(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        rng_algorithm: proptest::test_runner::RngAlgorithm::XorShift,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------
// (a) Replies decode the same however they are split
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(fast(256))]

    #[test]
    fn reply_stream_decodes_identically_however_split(
        pairs in prop::collection::vec(pair_strategy(), 1..30),
        sizes in prop::collection::vec(1usize..48, 1..40),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let steps: Vec<Step> = pairs.iter().map(|(c, r)| Step::from_spec(c, r)).collect();
        let expected: Vec<Outcome> = pairs.iter().map(|(c, r)| oracle(c, r)).collect();
        let total: usize = steps.iter().map(|s| s.reply.len()).sum();

        let (whole, conn) = run_pipeline(&steps, Config::default(), &[usize::MAX]);
        prop_assert_eq!(&whole, &expected);
        prop_assert!(conn.is_open());

        let (chunked, _) = run_pipeline(&steps, Config::default(), &sizes);
        prop_assert_eq!(&chunked, &expected);

        // Arbitrary cut points anywhere in the stream (turned into sizes).
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(total + 1)).collect();
        points.push(0);
        points.push(total);
        points.sort_unstable();
        points.dedup();
        let cut_sizes: Vec<usize> = points.windows(2).map(|w| w[1] - w[0]).collect();
        let (cut, _) = run_pipeline(&steps, Config::default(), &cut_sizes);
        prop_assert_eq!(&cut, &expected);
    }

    #[test]
    fn reply_stream_decodes_byte_by_byte(
        pairs in prop::collection::vec(pair_strategy(), 1..12),
    ) {
        let steps: Vec<Step> = pairs.iter().map(|(c, r)| Step::from_spec(c, r)).collect();
        let expected: Vec<Outcome> = pairs.iter().map(|(c, r)| oracle(c, r)).collect();
        let (bytewise, _) = run_pipeline(&steps, Config::default(), &[1]);
        prop_assert_eq!(bytewise, expected);
    }
}

// ---------------------------------------------------------------------------
// (b) Constructors refuse, or encode a well-formed line
// ---------------------------------------------------------------------------

/// An expected argument on the line.
#[derive(Debug, Clone)]
enum Arg<'a> {
    Tube(&'a str),
    Num(u64),
}

/// Checks that `wire` is exactly `name args...\r\n` (plus `body\r\n`), and
/// well-formed in every respect the server cares about.
fn check_wire(
    wire: &[u8],
    name: &str,
    args: &[Arg<'_>],
    body: Option<&[u8]>,
) -> Result<(), TestCaseError> {
    let end = wire
        .windows(2)
        .position(|w| w == b"\r\n")
        .ok_or_else(|| TestCaseError::fail("no CRLF"))?;
    let line = &wire[..end];
    prop_assert!(end + 2 <= 224, "line of {} bytes", end + 2);
    prop_assert!(
        !line.contains(&b'\r') && !line.contains(&b'\n'),
        "bare CR/LF"
    );
    prop_assert!(!line.contains(&0), "NUL in line");
    prop_assert!(line.is_ascii());
    let text = std::str::from_utf8(line).unwrap();
    prop_assert!(!text.starts_with(' ') && !text.ends_with(' '), "edge space");
    prop_assert!(!text.contains("  "), "double space");
    let words: Vec<&str> = text.split(' ').collect();
    prop_assert_eq!(words[0], name);
    prop_assert_eq!(words.len(), args.len() + 1, "{:?}", text);
    for (word, arg) in words[1..].iter().zip(args) {
        match arg {
            Arg::Tube(t) => {
                prop_assert_eq!(*word, *t);
                prop_assert!(tube_valid(word.as_bytes()), "tube {:?}", word);
            }
            Arg::Num(n) => {
                prop_assert!(
                    word.bytes().all(|b| b.is_ascii_digit()),
                    "number {:?}",
                    word
                );
                prop_assert!(
                    word.len() == 1 || !word.starts_with('0'),
                    "leading zero {:?}",
                    word
                );
                prop_assert_eq!(word.parse::<u64>().unwrap(), *n);
            }
        }
    }
    let rest = &wire[end + 2..];
    match body {
        None => prop_assert!(rest.is_empty(), "exactly one CRLF, at the end"),
        Some(body) => {
            prop_assert_eq!(rest.len(), body.len() + 2);
            prop_assert_eq!(&rest[..body.len()], body);
            prop_assert_eq!(&rest[body.len()..], b"\r\n");
        }
    }
    Ok(())
}

/// The protocol's rule for tube names, written independently.
fn tube_valid(name: &[u8]) -> bool {
    let allowed = |b: &u8| b.is_ascii_alphanumeric() || b"-+/;.$_()".contains(b);
    (1..=200).contains(&name.len()) && name[0] != b'-' && name.iter().all(allowed)
}

/// The error a name must give, in the crate's documented order of checks.
fn tube_error(name: &str) -> Option<CommandError> {
    let b = name.as_bytes();
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"-+/;.$_()".contains(&b);
    if b.is_empty() {
        Some(CommandError::EmptyTubeName)
    } else if b.len() > 200 {
        Some(CommandError::TubeNameTooLong { len: b.len() })
    } else if b[0] == b'-' {
        Some(CommandError::TubeNameLeadingHyphen)
    } else {
        b.iter()
            .position(|&c| !allowed(c))
            .map(|index| CommandError::TubeNameInvalidByte {
                byte: b[index],
                index,
            })
    }
}

/// Sends `request` on a fresh connection and returns the bytes.
fn wire_of<R: Request>(request: &R, config: Config) -> Result<Vec<u8>, CommandError> {
    let mut conn = Connection::new(config);
    let mut out = WriteBuf::new();
    conn.send(request, &mut out)?;
    Ok(drain(&mut out))
}

fn name_strategy() -> BoxedStrategy<String> {
    prop_oneof![
        3 => "[A-Za-z0-9+/;.$_()-]{0,12}",
        1 => "[a-z]{195,205}",
        1 => "-?[a-z]{0,3}[ \t\r\n\0*:\"'#é€]?[a-z]{0,3}",
        2 => any::<String>(),
        1 => prop::collection::vec(any::<char>(), 0..6).prop_map(|v| v.into_iter().collect()),
    ]
    .boxed()
}

proptest! {
    #![proptest_config(fast(512))]

    #[test]
    fn tube_commands_refuse_or_encode_well(name in name_strategy(), secs in any::<u32>()) {
        let expected = tube_error(&name);
        prop_assert_eq!(expected.is_none(), tube_valid(name.as_bytes()));
        let c = Config::default();
        let t = Arg::Tube(&name);
        let results = [
            ("use", cmd::Use::new(name.as_str()).map(|r| wire_of(&r, c)), vec![t.clone()]),
            ("watch", cmd::Watch::new(name.as_str()).map(|r| wire_of(&r, c)), vec![t.clone()]),
            ("ignore", cmd::Ignore::new(name.as_str()).map(|r| wire_of(&r, c)), vec![t.clone()]),
            (
                "stats-tube",
                cmd::StatsTube::new(name.as_str()).map(|r| wire_of(&r, c)),
                vec![t.clone()],
            ),
            (
                "pause-tube",
                cmd::PauseTube::new(name.as_str(), secs).map(|r| wire_of(&r, c)),
                vec![t.clone(), Arg::Num(secs.into())],
            ),
        ];
        for (command, result, args) in results {
            match (result, expected) {
                (Err(got), Some(want)) => prop_assert_eq!(got, want, "{}", command),
                (Ok(wire), None) => check_wire(&wire.unwrap(), command, &args, None)?,
                (got, want) => {
                    return Err(TestCaseError::fail(format!(
                        "{command}({name:?}): got {got:?}, expected {want:?}"
                    )));
                }
            }
        }
    }

    #[test]
    fn numeric_commands_encode_well(id in any::<u64>(), a in any::<u32>(), b in any::<u32>()) {
        let c = Config::default();
        let n = |v: u64| Arg::Num(v);
        let (id_, a_, b_) = (id, u64::from(a), u64::from(b));
        let cases: Vec<(&str, Vec<u8>, Vec<Arg<'_>>)> = vec![
            ("reserve-job", wire_of(&cmd::ReserveJob::new(id), c).unwrap(), vec![n(id_)]),
            ("delete", wire_of(&cmd::Delete::new(id), c).unwrap(), vec![n(id_)]),
            ("release", wire_of(&cmd::Release::new(id, a, b), c).unwrap(), vec![n(id_), n(a_), n(b_)]),
            ("bury", wire_of(&cmd::Bury::new(id, a), c).unwrap(), vec![n(id_), n(a_)]),
            ("touch", wire_of(&cmd::Touch::new(id), c).unwrap(), vec![n(id_)]),
            ("peek", wire_of(&cmd::Peek::new(id), c).unwrap(), vec![n(id_)]),
            ("kick", wire_of(&cmd::Kick::new(a), c).unwrap(), vec![n(a_)]),
            ("kick-job", wire_of(&cmd::KickJob::new(id), c).unwrap(), vec![n(id_)]),
            ("stats-job", wire_of(&cmd::StatsJob::new(id), c).unwrap(), vec![n(id_)]),
            ("reserve", wire_of(&cmd::Reserve, c).unwrap(), vec![]),
            ("peek-ready", wire_of(&cmd::PeekReady, c).unwrap(), vec![]),
            ("peek-delayed", wire_of(&cmd::PeekDelayed, c).unwrap(), vec![]),
            ("peek-buried", wire_of(&cmd::PeekBuried, c).unwrap(), vec![]),
            ("stats", wire_of(&cmd::Stats, c).unwrap(), vec![]),
            ("list-tubes", wire_of(&cmd::ListTubes, c).unwrap(), vec![]),
            ("list-tube-used", wire_of(&cmd::ListTubeUsed, c).unwrap(), vec![]),
            ("list-tubes-watched", wire_of(&cmd::ListTubesWatched, c).unwrap(), vec![]),
            ("quit", wire_of(&cmd::Quit, c).unwrap(), vec![]),
        ];
        for (command, wire, args) in cases {
            check_wire(&wire, command, &args, None)?;
        }
        // reserve-with-timeout: refused above i32::MAX, encoded otherwise.
        match cmd::ReserveWithTimeout::new(a) {
            Ok(r) => {
                prop_assert!(a <= i32::MAX as u32);
                check_wire(&wire_of(&r, c).unwrap(), "reserve-with-timeout", &[n(a_)], None)?;
            }
            Err(e) => {
                prop_assert!(a > i32::MAX as u32);
                prop_assert_eq!(e, CommandError::TimeoutTooLarge { seconds: a });
            }
        }
    }

    #[test]
    fn put_refuses_or_encodes_line_then_exact_body(
        body in prop::collection::vec(
            prop_oneof![Just(b'\r'), Just(b'\n'), Just(0u8), any::<u8>()],
            0..300,
        ),
        pri in any::<u32>(),
        delay in any::<u32>(),
        ttr in any::<u32>(),
        limit in 0u32..400,
        shared in any::<bool>(),
        zero_copy_min in prop_oneof![Just(16 * 1024), 1usize..64, Just(usize::MAX)],
    ) {
        let config = Config::default().max_job_size(limit);
        let opts = PutOptions::default().priority(pri).delay(delay).ttr(ttr);
        let put = if shared {
            cmd::Put::new(bytes::Bytes::from(body.clone()), opts).unwrap()
        } else {
            cmd::Put::new(&body, opts).unwrap()
        };
        let mut conn = Connection::new(config);
        let mut out = WriteBuf::with_zero_copy_min(zero_copy_min);
        match conn.send(&put, &mut out) {
            Ok(_) => {
                prop_assert!(body.len() <= limit as usize);
                let wire = drain(&mut out);
                let args = [pri, delay, ttr].map(|v| Arg::Num(v.into()));
                let mut args = args.to_vec();
                args.push(Arg::Num(body.len() as u64));
                check_wire(&wire, "put", &args, Some(&body))?;
            }
            Err(e) => {
                prop_assert!(body.len() > limit as usize);
                prop_assert_eq!(e, CommandError::JobTooBig { len: body.len(), max: limit });
                prop_assert!(out.is_empty());
                prop_assert_eq!(conn.in_flight(), 0);
            }
        }
    }
}
