//! The exact bytes of all 25 commands, every validation rule at and just
//! past its boundary, the line-length bound, and the `WriteBuf` (zero-copy
//! bodies, vectored writes).

mod common;

use std::io::IoSlice;

use beanstalk_proto::cmd::{self, MAX_COMMAND_LINE};
use beanstalk_proto::config::{DEFAULT_MAX_JOB_SIZE, MAX_SERVER_JOB_SIZE};
use beanstalk_proto::write_buf::DEFAULT_ZERO_COPY_MIN;
use beanstalk_proto::{
    CommandError, Config, Connection, IntoTube, PutOptions, Request, State, Tube, WriteBuf,
};
use bytes::{Buf, Bytes};
use common::{drain, encode};

// ---------------------------------------------------------------------------
// Exact bytes
// ---------------------------------------------------------------------------

#[test]
fn exact_bytes_of_all_25_commands() {
    let opts = PutOptions::default().priority(5).delay(10).ttr(30);
    let cases: Vec<(Vec<u8>, &[u8])> = vec![
        (
            encode(&cmd::Put::new("hello", opts).unwrap()),
            b"put 5 10 30 5\r\nhello\r\n",
        ),
        (encode(&cmd::Use::new("emails").unwrap()), b"use emails\r\n"),
        (encode(&cmd::Reserve), b"reserve\r\n"),
        (
            encode(&cmd::ReserveWithTimeout::new(0).unwrap()),
            b"reserve-with-timeout 0\r\n",
        ),
        (encode(&cmd::ReserveJob::new(42)), b"reserve-job 42\r\n"),
        (encode(&cmd::Delete::new(42)), b"delete 42\r\n"),
        (
            encode(&cmd::Release::new(42, 1024, 10)),
            b"release 42 1024 10\r\n",
        ),
        (encode(&cmd::Bury::new(42, 7)), b"bury 42 7\r\n"),
        (encode(&cmd::Touch::new(42)), b"touch 42\r\n"),
        (
            encode(&cmd::Watch::new("emails").unwrap()),
            b"watch emails\r\n",
        ),
        (
            encode(&cmd::Ignore::new("default").unwrap()),
            b"ignore default\r\n",
        ),
        (encode(&cmd::Peek::new(42)), b"peek 42\r\n"),
        (encode(&cmd::PeekReady), b"peek-ready\r\n"),
        (encode(&cmd::PeekDelayed), b"peek-delayed\r\n"),
        (encode(&cmd::PeekBuried), b"peek-buried\r\n"),
        (encode(&cmd::Kick::new(100)), b"kick 100\r\n"),
        (encode(&cmd::KickJob::new(42)), b"kick-job 42\r\n"),
        (encode(&cmd::StatsJob::new(42)), b"stats-job 42\r\n"),
        (
            encode(&cmd::StatsTube::new("emails").unwrap()),
            b"stats-tube emails\r\n",
        ),
        (encode(&cmd::Stats), b"stats\r\n"),
        (encode(&cmd::ListTubes), b"list-tubes\r\n"),
        (encode(&cmd::ListTubeUsed), b"list-tube-used\r\n"),
        (encode(&cmd::ListTubesWatched), b"list-tubes-watched\r\n"),
        (encode(&cmd::Quit), b"quit\r\n"),
        (
            encode(&cmd::PauseTube::new("emails", 30).unwrap()),
            b"pause-tube emails 30\r\n",
        ),
    ];
    assert_eq!(cases.len(), 25);
    assert_eq!(cmd::CommandKind::ALL.len(), 25);
    for (got, want) in cases {
        assert_eq!(
            got.escape_ascii().to_string(),
            want.escape_ascii().to_string()
        );
    }
}

#[test]
fn numbers_are_plain_decimal_at_their_extremes() {
    let max = u64::MAX;
    let m32 = u32::MAX;
    let cases: Vec<(Vec<u8>, String)> = vec![
        (encode(&cmd::Delete::new(0)), "delete 0\r\n".into()),
        (encode(&cmd::Delete::new(max)), format!("delete {max}\r\n")),
        (encode(&cmd::Peek::new(max)), format!("peek {max}\r\n")),
        (encode(&cmd::Touch::new(max)), format!("touch {max}\r\n")),
        (
            encode(&cmd::ReserveJob::new(max)),
            format!("reserve-job {max}\r\n"),
        ),
        (
            encode(&cmd::KickJob::new(max)),
            format!("kick-job {max}\r\n"),
        ),
        (
            encode(&cmd::StatsJob::new(max)),
            format!("stats-job {max}\r\n"),
        ),
        (
            encode(&cmd::Release::new(max, m32, m32)),
            format!("release {max} {m32} {m32}\r\n"),
        ),
        (
            encode(&cmd::Release::new(0, 0, 0)),
            "release 0 0 0\r\n".into(),
        ),
        (
            encode(&cmd::Bury::new(max, m32)),
            format!("bury {max} {m32}\r\n"),
        ),
        (encode(&cmd::Kick::new(0)), "kick 0\r\n".into()),
        (encode(&cmd::Kick::new(m32)), format!("kick {m32}\r\n")),
        (
            encode(&cmd::PauseTube::new("t", 0).unwrap()),
            "pause-tube t 0\r\n".into(),
        ),
        (
            encode(&cmd::Put::new("", PutOptions::default().priority(0).delay(0).ttr(0)).unwrap()),
            "put 0 0 0 0\r\n\r\n".into(),
        ),
        (
            encode(
                &cmd::Put::new("x", PutOptions::default().priority(m32).delay(m32).ttr(m32))
                    .unwrap(),
            ),
            format!("put {m32} {m32} {m32} 1\r\nx\r\n"),
        ),
        (
            encode(&cmd::Put::new("a\r\nb\0", PutOptions::default()).unwrap()),
            "put 1024 0 60 5\r\na\r\nb\0\r\n".into(),
        ),
    ];
    for (got, want) in cases {
        assert_eq!(
            got.escape_ascii().to_string(),
            want.as_bytes().escape_ascii().to_string()
        );
    }
    assert_eq!(
        PutOptions::default(),
        PutOptions::default().priority(1024).delay(0).ttr(60)
    );
}

// ---------------------------------------------------------------------------
// Tube names
// ---------------------------------------------------------------------------

/// Every way a tube name reaches a command, each must give `expected`.
fn all_tube_constructors(name: &str, expected: Result<(), CommandError>) {
    let results = [
        ("Tube::new", Tube::new(name).map(drop)),
        (
            "Tube::try_from(String)",
            Tube::try_from(name.to_owned()).map(drop),
        ),
        ("Tube::try_from(&str)", Tube::try_from(name).map(drop)),
        ("String::into_tube", name.to_owned().into_tube().map(drop)),
        (
            "&String::into_tube",
            (&name.to_owned()).into_tube().map(drop),
        ),
        ("Use", cmd::Use::new(name).map(drop)),
        ("Watch", cmd::Watch::new(name).map(drop)),
        ("Ignore", cmd::Ignore::new(name).map(drop)),
        ("StatsTube", cmd::StatsTube::new(name).map(drop)),
        ("PauseTube", cmd::PauseTube::new(name, 1).map(drop)),
    ];
    for (what, got) in results {
        assert_eq!(
            got,
            expected,
            "{what}({:?})",
            name.escape_debug().to_string()
        );
    }
}

#[test]
fn tube_name_length_boundaries() {
    all_tube_constructors("a", Ok(()));
    all_tube_constructors(&"a".repeat(200), Ok(()));
    all_tube_constructors(
        &"a".repeat(201),
        Err(CommandError::TubeNameTooLong { len: 201 }),
    );
    all_tube_constructors(
        &"a".repeat(10_000),
        Err(CommandError::TubeNameTooLong { len: 10_000 }),
    );
    all_tube_constructors("", Err(CommandError::EmptyTubeName));
    // The longest name still encodes to the exact bytes.
    let name = "Z".repeat(200);
    assert_eq!(
        encode(&cmd::Use::new(name.as_str()).unwrap()),
        format!("use {name}\r\n").into_bytes()
    );
}

#[test]
fn tube_name_leading_hyphen() {
    all_tube_constructors("-", Err(CommandError::TubeNameLeadingHyphen));
    all_tube_constructors("-x", Err(CommandError::TubeNameLeadingHyphen));
    all_tube_constructors("x-", Ok(()));
    all_tube_constructors("x-y", Ok(()));
    // A leading hyphen is reported before a bad byte later on.
    all_tube_constructors("-a b", Err(CommandError::TubeNameLeadingHyphen));
}

#[test]
fn tube_name_every_byte() {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"-+/;.$_()".contains(&b);
    let mut ok = 0;
    for b in 0u8..=0x7f {
        let c = char::from(b);
        // In the middle of a name.
        let name = format!("ab{c}cd");
        let expected = if allowed(b) {
            ok += 1;
            Ok(())
        } else {
            Err(CommandError::TubeNameInvalidByte { byte: b, index: 2 })
        };
        all_tube_constructors(&name, expected);
        // As the whole name.
        let expected = match b {
            b'-' => Err(CommandError::TubeNameLeadingHyphen),
            _ if allowed(b) => Ok(()),
            _ => Err(CommandError::TubeNameInvalidByte { byte: b, index: 0 }),
        };
        all_tube_constructors(&c.to_string(), expected);
    }
    assert_eq!(ok, 26 + 26 + 10 + 9, "A-Z a-z 0-9 - + / ; . $ _ ( )");
    // The ones the server was observed to reject, spelled out.
    for (name, byte, index) in [
        ("a\rb", b'\r', 1),
        ("a\nb", b'\n', 1),
        ("a\r\n", b'\r', 1),
        ("\0", 0, 0),
        ("ab\0", 0, 2),
        ("a b", b' ', 1),
        ("a\tb", b'\t', 1),
        ("a*b", b'*', 1),
        ("a:b", b':', 1),
        ("a\"b", b'"', 1),
        ("é", 0xc3, 0),
        ("caf\u{e9}", 0xc3, 3),
        ("a\u{80}", 0xc2, 1),
        ("a€", 0xe2, 1),
        ("a\u{10ffff}", 0xf4, 1),
        ("a\u{7f}", 0x7f, 1),
    ] {
        all_tube_constructors(name, Err(CommandError::TubeNameInvalidByte { byte, index }));
    }
}

#[test]
fn tube_from_static_and_default() {
    assert_eq!(Tube::from_static("emails").unwrap().as_str(), "emails");
    assert_eq!(
        Tube::from_static("-x"),
        Err(CommandError::TubeNameLeadingHyphen)
    );
    assert_eq!(Tube::DEFAULT.as_str(), "default");
    let tube = Tube::new("t1").unwrap();
    // An already validated Tube is accepted as is, by value or reference.
    assert_eq!(encode(&cmd::Watch::new(&tube).unwrap()), b"watch t1\r\n");
    assert_eq!(encode(&cmd::Watch::new(tube).unwrap()), b"watch t1\r\n");
}

// ---------------------------------------------------------------------------
// Numbers and sizes
// ---------------------------------------------------------------------------

#[test]
fn reserve_timeout_boundary() {
    let max = i32::MAX as u32;
    assert_eq!(cmd::ReserveWithTimeout::MAX_SECONDS, max);
    let ok = cmd::ReserveWithTimeout::new(max).unwrap();
    assert_eq!(ok.seconds(), max);
    assert_eq!(encode(&ok), b"reserve-with-timeout 2147483647\r\n");
    for seconds in [max + 1, u32::MAX] {
        assert_eq!(
            cmd::ReserveWithTimeout::new(seconds),
            Err(CommandError::TimeoutTooLarge { seconds })
        );
    }
}

/// Sends `put` after one earlier command and asserts that a refused put
/// leaves everything as it was.
fn assert_put_refused(config: Config, body_len: usize) {
    let mut conn = Connection::new(config);
    let mut out = WriteBuf::new();
    let first = conn.send(&cmd::Delete::new(1), &mut out).unwrap();
    let before = (out.remaining(), out.chunk_count(), conn.in_flight());
    let body = Bytes::from(vec![b'x'; body_len]);
    let put = cmd::Put::new(body, PutOptions::default()).unwrap();
    assert_eq!(
        conn.send(&put, &mut out),
        Err(CommandError::JobTooBig {
            len: body_len,
            max: config.job_size_limit()
        })
    );
    assert_eq!(
        (out.remaining(), out.chunk_count(), conn.in_flight()),
        before,
        "nothing written, nothing queued"
    );
    assert_eq!(conn.state(), State::Open);
    assert_eq!(conn.next_token(), Some(first));
    assert_eq!(drain(&mut out), b"delete 1\r\n");
    // The connection goes on as if nothing happened; no token was used up.
    let next = conn.send(&cmd::Delete::new(2), &mut out).unwrap();
    assert_eq!(next.get(), first.get() + 1);
}

#[test]
fn put_body_size_boundary() {
    // Default: beanstalkd's own default -z, 65,535.
    let config = Config::default();
    assert_eq!(config.job_size_limit(), DEFAULT_MAX_JOB_SIZE);
    assert_eq!(DEFAULT_MAX_JOB_SIZE, 65_535);
    let mut conn = Connection::new(config);
    let mut out = WriteBuf::new();
    let body = vec![b'y'; 65_535];
    conn.send(
        &cmd::Put::new(&body, PutOptions::default()).unwrap(),
        &mut out,
    )
    .unwrap();
    let bytes = drain(&mut out);
    assert!(bytes.starts_with(b"put 1024 0 60 65535\r\nyyy"));
    assert!(bytes.ends_with(b"yyy\r\n"));
    assert_eq!(bytes.len(), "put 1024 0 60 65535\r\n".len() + 65_535 + 2);
    assert_put_refused(config, 65_536);

    // A configured limit, at and past it.
    let config = Config::default().max_job_size(10);
    let mut conn = Connection::new(config);
    conn.send(
        &cmd::Put::new(&b"0123456789"[..], PutOptions::default()).unwrap(),
        &mut WriteBuf::new(),
    )
    .unwrap();
    assert_put_refused(config, 11);
    // Zero: only empty jobs.
    let config = Config::default().max_job_size(0);
    let mut conn = Connection::new(config);
    conn.send(
        &cmd::Put::new("", PutOptions::default()).unwrap(),
        &mut WriteBuf::new(),
    )
    .unwrap();
    assert_put_refused(config, 1);
    // Above the server's ceiling of 1 GiB: lowered to it.
    assert_eq!(MAX_SERVER_JOB_SIZE, 1 << 30);
    assert_eq!(
        Config::default().max_job_size(u32::MAX).job_size_limit(),
        1 << 30
    );
    assert_eq!(
        Config::default()
            .max_job_size((1 << 30) + 1)
            .job_size_limit(),
        1 << 30
    );
    assert_eq!(
        Config::default().max_job_size(1 << 30).job_size_limit(),
        1 << 30
    );
}

#[test]
fn invalid_arguments_never_touch_the_connection() {
    let mut conn = Connection::default();
    let mut out = WriteBuf::new();
    conn.send(&cmd::Stats, &mut out).unwrap();
    assert!(cmd::Use::new("bad name").is_err());
    assert!(cmd::ReserveWithTimeout::new(u32::MAX).is_err());
    assert_eq!(conn.in_flight(), 1);
    assert_eq!(drain(&mut out), b"stats\r\n");
    assert!(conn.is_open());
}

// ---------------------------------------------------------------------------
// The 224-byte line limit
// ---------------------------------------------------------------------------

/// The command line (up to and including the first CRLF) of an encoding.
fn line_of(bytes: &[u8]) -> &[u8] {
    let end = bytes.windows(2).position(|w| w == b"\r\n").unwrap() + 2;
    &bytes[..end]
}

#[test]
fn longest_line_of_every_command_fits_224_bytes() {
    assert_eq!(MAX_COMMAND_LINE, 224);
    let name = "n".repeat(200);
    let name = name.as_str();
    let (u, q) = (u32::MAX, u64::MAX);
    let max_put = Bytes::from(vec![0u8; DEFAULT_MAX_JOB_SIZE as usize]);
    let longest: Vec<(&str, Vec<u8>)> = vec![
        (
            "put",
            encode(
                &cmd::Put::new(max_put, PutOptions::default().priority(u).delay(u).ttr(u)).unwrap(),
            ),
        ),
        ("use", encode(&cmd::Use::new(name).unwrap())),
        ("reserve", encode(&cmd::Reserve)),
        (
            "reserve-with-timeout",
            encode(&cmd::ReserveWithTimeout::new(i32::MAX as u32).unwrap()),
        ),
        ("reserve-job", encode(&cmd::ReserveJob::new(q))),
        ("delete", encode(&cmd::Delete::new(q))),
        ("release", encode(&cmd::Release::new(q, u, u))),
        ("bury", encode(&cmd::Bury::new(q, u))),
        ("touch", encode(&cmd::Touch::new(q))),
        ("watch", encode(&cmd::Watch::new(name).unwrap())),
        ("ignore", encode(&cmd::Ignore::new(name).unwrap())),
        ("peek", encode(&cmd::Peek::new(q))),
        ("peek-ready", encode(&cmd::PeekReady)),
        ("peek-delayed", encode(&cmd::PeekDelayed)),
        ("peek-buried", encode(&cmd::PeekBuried)),
        ("kick", encode(&cmd::Kick::new(u))),
        ("kick-job", encode(&cmd::KickJob::new(q))),
        ("stats-job", encode(&cmd::StatsJob::new(q))),
        ("stats-tube", encode(&cmd::StatsTube::new(name).unwrap())),
        ("stats", encode(&cmd::Stats)),
        ("list-tubes", encode(&cmd::ListTubes)),
        ("list-tube-used", encode(&cmd::ListTubeUsed)),
        ("list-tubes-watched", encode(&cmd::ListTubesWatched)),
        ("quit", encode(&cmd::Quit)),
        ("pause-tube", encode(&cmd::PauseTube::new(name, u).unwrap())),
    ];
    assert_eq!(longest.len(), 25);
    for (command, bytes) in &longest {
        let line = line_of(bytes);
        assert!(line.starts_with(command.as_bytes()), "{command}");
        assert!(
            line.len() <= MAX_COMMAND_LINE,
            "{command}: {} bytes",
            line.len()
        );
    }
    let pause = &longest[24].1;
    assert_eq!(
        pause.len(),
        224,
        "pause-tube <200> 4294967295 is exactly 224"
    );
    assert_eq!(
        line_of(&longest[0].1),
        b"put 4294967295 4294967295 4294967295 65535\r\n"
    );
    // The body length is a u32 too, so no put line can exceed this one.
    let longest_put = format!("put {u} {u} {u} {u}\r\n");
    assert_eq!(longest_put.len(), 49);
    assert!(longest_put.len() <= MAX_COMMAND_LINE);
    let lens: Vec<usize> = longest.iter().map(|(_, b)| line_of(b).len()).collect();
    assert_eq!(lens[1], 206, "use <200>");
    assert_eq!(lens[18], 213, "stats-tube <200>");
}

// ---------------------------------------------------------------------------
// WriteBuf
// ---------------------------------------------------------------------------

fn put_into(
    out: &mut WriteBuf,
    conn: &mut Connection,
    body: impl Into<beanstalk_proto::Body<'static>>,
) {
    conn.send(&cmd::Put::new(body, PutOptions::default()).unwrap(), out)
        .unwrap();
}

#[test]
fn large_shared_bodies_are_queued_by_reference() {
    let config = Config::default().max_job_size(1 << 20);
    for len in [DEFAULT_ZERO_COPY_MIN, DEFAULT_ZERO_COPY_MIN + 1, 100_000] {
        let body = Bytes::from(vec![7u8; len]);
        let mut conn = Connection::new(config);
        let mut out = WriteBuf::new();
        put_into(&mut out, &mut conn, body.clone());
        assert_eq!(out.chunk_count(), 3, "line, body, CRLF");
        let line = format!("put 1024 0 60 {len}\r\n");
        assert_eq!(out.chunk(), line.as_bytes());
        out.advance(line.len());
        assert_eq!(
            out.chunk().as_ptr(),
            body.as_ptr(),
            "the body itself, not a copy"
        );
        assert_eq!(out.chunk().len(), len);
        out.advance(len);
        assert_eq!(out.chunk(), b"\r\n");
        out.advance(2);
        assert!(out.is_empty());
    }
    // A Vec<u8> body becomes Bytes without a copy, and is queued by reference.
    let vec = vec![1u8; 20_000];
    let ptr = vec.as_ptr();
    let mut conn = Connection::new(config);
    let mut out = WriteBuf::new();
    put_into(&mut out, &mut conn, vec);
    out.advance("put 1024 0 60 20000\r\n".len());
    assert_eq!(out.chunk().as_ptr(), ptr);
    // &Bytes too.
    let body = Bytes::from(vec![2u8; 20_000]);
    let mut out = WriteBuf::new();
    conn.send(
        &cmd::Put::new(&body, PutOptions::default()).unwrap(),
        &mut out,
    )
    .unwrap();
    out.advance("put 1024 0 60 20000\r\n".len());
    assert_eq!(out.chunk().as_ptr(), body.as_ptr());
}

#[test]
fn small_and_borrowed_bodies_are_copied() {
    let config = Config::default().max_job_size(1 << 20);
    // Shared, one byte under the threshold.
    let body = Bytes::from(vec![7u8; DEFAULT_ZERO_COPY_MIN - 1]);
    let mut conn = Connection::new(config);
    let mut out = WriteBuf::new();
    put_into(&mut out, &mut conn, body.clone());
    assert_eq!(out.chunk_count(), 1, "one contiguous chunk");
    let line = format!("put 1024 0 60 {}\r\n", body.len());
    assert_eq!(out.chunk().len(), line.len() + body.len() + 2);
    assert_ne!(out.chunk()[line.len()..].as_ptr(), body.as_ptr());
    // Borrowed, however large.
    let big = vec![9u8; 100_000];
    let mut out = WriteBuf::new();
    conn.send(
        &cmd::Put::new(&big, PutOptions::default()).unwrap(),
        &mut out,
    )
    .unwrap();
    assert_eq!(out.chunk_count(), 1);
    let bytes = drain(&mut out);
    assert_eq!(&bytes[bytes.len() - 100_002..bytes.len() - 2], &big[..]);
    // A buffer that never queues by reference.
    let body = Bytes::from(vec![7u8; 100_000]);
    let mut out = WriteBuf::with_zero_copy_min(usize::MAX);
    put_into(&mut out, &mut conn, body);
    assert_eq!(out.chunk_count(), 1);
    // And one with a low threshold.
    let body = Bytes::from(vec![7u8; 100]);
    let mut out = WriteBuf::with_zero_copy_min(100);
    put_into(&mut out, &mut conn, body.clone());
    assert_eq!(out.chunk_count(), 3);
    out.advance("put 1024 0 60 100\r\n".len());
    assert_eq!(out.chunk().as_ptr(), body.as_ptr());
}

#[test]
fn chunks_vectored_covers_all_bytes_in_order() {
    let config = Config::default().max_job_size(1 << 20);
    let mut conn = Connection::new(config);
    let mut out = WriteBuf::new();
    let big1 = Bytes::from(vec![b'1'; 20_000]);
    let big2 = Bytes::from(vec![b'2'; 30_000]);
    conn.send(&cmd::Delete::new(1), &mut out).unwrap();
    put_into(&mut out, &mut conn, big1.clone());
    put_into(&mut out, &mut conn, Bytes::from_static(b"small"));
    put_into(&mut out, &mut conn, big2.clone());
    put_into(&mut out, &mut conn, big1.clone());
    conn.send(&cmd::Stats, &mut out).unwrap();

    let mut expected = b"delete 1\r\nput 1024 0 60 20000\r\n".to_vec();
    expected.extend_from_slice(&big1);
    expected.extend_from_slice(b"\r\nput 1024 0 60 5\r\nsmall\r\nput 1024 0 60 30000\r\n");
    expected.extend_from_slice(&big2);
    expected.extend_from_slice(b"\r\nput 1024 0 60 20000\r\n");
    expected.extend_from_slice(&big1);
    expected.extend_from_slice(b"\r\nstats\r\n");
    assert_eq!(out.remaining(), expected.len());
    // line | big1 | CRLF+put small+line | big2 | CRLF+line | big1 | CRLF+stats
    assert_eq!(out.chunk_count(), 7);

    let vectored = |out: &WriteBuf, slots: usize| -> (usize, Vec<u8>) {
        let mut dst = vec![IoSlice::new(&[]); slots];
        let n = out.chunks_vectored(&mut dst);
        let bytes = dst[..n].iter().flat_map(|s| s.iter().copied()).collect();
        (n, bytes)
    };
    let (n, all) = vectored(&out, 16);
    assert_eq!(n, 7);
    assert_eq!(all, expected, "all bytes, in order");
    // Fewer slots: a prefix, in order.
    let (n, prefix) = vectored(&out, 2);
    assert_eq!(n, 2);
    assert_eq!(prefix, expected[..prefix.len()]);
    assert_eq!(
        prefix.len(),
        "delete 1\r\nput 1024 0 60 20000\r\n".len() + 20_000
    );

    // Advance by odd amounts, re-checking the vectored view each time.
    let mut written = 0;
    while out.has_remaining() {
        let (_, rest) = vectored(&out, 16);
        assert_eq!(rest, expected[written..], "after {written} bytes");
        let step = 7_919.min(out.remaining());
        out.advance(step);
        written += step;
    }
    assert_eq!(written, expected.len());
    assert_eq!(vectored(&out, 16).0, 0);
    assert_eq!(out.chunk_count(), 0);
}

#[test]
fn draining_by_chunk_gives_the_same_bytes_and_clear_empties() {
    let mut conn = Connection::new(Config::default().max_job_size(1 << 20));
    let mut out = WriteBuf::new();
    let big = Bytes::from(vec![b'z'; 40_000]);
    put_into(&mut out, &mut conn, big.clone());
    conn.send(&cmd::Reserve, &mut out).unwrap();
    let mut expected = b"put 1024 0 60 40000\r\n".to_vec();
    expected.extend_from_slice(&big);
    expected.extend_from_slice(b"\r\nreserve\r\n");
    assert_eq!(drain(&mut out), expected);

    put_into(&mut out, &mut conn, big);
    assert!(!out.is_empty());
    out.clear();
    assert!(out.is_empty());
    assert_eq!(out.remaining(), 0);
    assert_eq!(out.chunk_count(), 0);
    assert_eq!(out.chunk(), b"");
}

/// Regression (write_buf.rs, `put_body`): with `WriteBuf::with_zero_copy_min(0)`
/// an empty `Bytes` body (`0 >= 0`) was pushed as an empty sealed chunk.
/// Once the line before it is written, `chunk()` returns an empty slice
/// while `remaining()` is 2 (the CRLF), which breaks the `Buf` contract
/// ("chunk() should return an empty slice if and only if remaining() is
/// 0"): a writer loop that writes `chunk()` then sees a 0-byte write and
/// fails with `WriteZero`, or spins. Expected: empty bodies are never queued
/// as a chunk (e.g. `Some(bytes) if !bytes.is_empty() && ...`).
#[test]
fn zero_copy_min_zero_with_empty_body_keeps_buf_contract() {
    let mut conn = Connection::default();
    let mut out = WriteBuf::with_zero_copy_min(0);
    put_into(&mut out, &mut conn, Bytes::new());
    let line = b"put 1024 0 60 0\r\n";
    assert!(out.chunk().starts_with(line));
    out.advance(line.len());
    assert_eq!(out.remaining(), 2);
    assert_eq!(
        out.chunk(),
        b"\r\n",
        "chunk() is empty while {} bytes remain",
        out.remaining()
    );
}

#[test]
fn request_encode_is_the_same_as_send() {
    // Request::encode is public; Connection::send adds only validation and
    // queueing.
    let put = cmd::Put::new("abc", PutOptions::default()).unwrap();
    let mut raw = WriteBuf::new();
    put.encode(&mut raw);
    assert_eq!(drain(&mut raw), encode(&put));
    assert_eq!(encode(&put), b"put 1024 0 60 3\r\nabc\r\n");
}
