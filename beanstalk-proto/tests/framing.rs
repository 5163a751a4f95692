//! Malformed input and the connection's life cycle: each kind of bad reply
//! gives its own `ProtocolError`, every fatal error is sticky (later sends
//! fail with `CommandError::Broken`, later polls repeat the error), and EOF,
//! `abandon()` and `quit` end the connection as documented.

mod common;

use beanstalk_proto::frame::{self, Head, Limits, MAX_REPLY_LINE, ReplyWord as W, Status};
use beanstalk_proto::{
    CommandError, Config, Connection, ProtocolError, Response, State, WriteBuf, cmd,
};
use bytes::BytesMut;

/// A connection with one command of each common shape in flight.
fn with_in_flight<R: beanstalk_proto::Request>(request: &R) -> Connection {
    let mut conn = Connection::default();
    conn.send(request, &mut WriteBuf::new()).unwrap();
    conn
}

/// Feeds `input` to a connection waiting on `request` and returns the first
/// error; asserts it is sticky in every way.
fn fatal<R: beanstalk_proto::Request>(request: &R, input: &[u8]) -> ProtocolError {
    let mut conn = with_in_flight(request);
    let mut src = BytesMut::from(input);
    let err = match conn.poll_response(&mut src) {
        Err(e) => e,
        other => panic!("{}: expected an error, got {other:?}", input.escape_ascii()),
    };
    assert_sticky(&mut conn, err);
    err
}

/// Every later call fails the same way.
fn assert_sticky(conn: &mut Connection, err: ProtocolError) {
    assert_eq!(conn.state(), State::Broken(err));
    assert!(!conn.is_open());
    assert_eq!(conn.in_flight(), 0);
    assert_eq!(conn.next_reply_timeout(), None);
    assert_eq!(conn.next_token(), None);
    let mut out = WriteBuf::new();
    assert_eq!(
        conn.send(&cmd::Delete::new(1), &mut out),
        Err(CommandError::Broken(err))
    );
    assert_eq!(
        conn.send(&cmd::Put::new("x", Default::default()).unwrap(), &mut out),
        Err(CommandError::Broken(err))
    );
    assert_eq!(
        conn.send(&cmd::Stats, &mut out),
        Err(CommandError::Broken(err))
    );
    assert_eq!(
        conn.send(&cmd::Quit, &mut out),
        Err(CommandError::Broken(err))
    );
    assert!(out.is_empty(), "nothing is encoded on a broken connection");
    // Valid input, empty input, garbage: the same error.
    for input in [&b"DELETED\r\n"[..], b"", b"\n\n\n"] {
        assert_eq!(conn.poll_response(&mut BytesMut::from(input)), Err(err));
    }
    assert_eq!(conn.handle_eof(&[]), Err(err));
    conn.abandon();
    assert_eq!(
        conn.state(),
        State::Broken(err),
        "abandon keeps the first cause"
    );
    assert_eq!(conn.in_flight(), 0);
}

/// Feeds `input` one byte at a time; returns at which byte count the first
/// error came, and the error.
fn fatal_at<R: beanstalk_proto::Request>(request: &R, input: &[u8]) -> (usize, ProtocolError) {
    let mut conn = with_in_flight(request);
    let mut src = BytesMut::new();
    for (i, b) in input.iter().enumerate() {
        src.extend_from_slice(&[*b]);
        match conn.poll_response(&mut src) {
            Ok(None) => {}
            Ok(Some(r)) => panic!("unexpected reply {r:?}"),
            Err(e) => {
                assert_sticky(&mut conn, e);
                return (i + 1, e);
            }
        }
    }
    panic!("no error for {}", input.escape_ascii())
}

fn delete() -> cmd::Delete {
    cmd::Delete::new(1)
}

fn reserve() -> cmd::Reserve {
    cmd::Reserve
}

/// A request of any type, sent on a connection (for tables of requests).
trait Sendable {
    fn send_on(&self, conn: &mut Connection);
}

impl<R: beanstalk_proto::Request> Sendable for R {
    fn send_on(&self, conn: &mut Connection) {
        conn.send(self, &mut WriteBuf::new()).unwrap();
    }
}

// ---------------------------------------------------------------------------
// Line endings and length
// ---------------------------------------------------------------------------

#[test]
fn bare_lf_is_not_a_line_end() {
    for input in [
        &b"DELETED\n"[..],
        b"\n",
        b"DEL\nETED\r\n",
        b"INSERTED 1\n\r\n",
        b"\nDELETED\r\n",
    ] {
        assert_eq!(
            fatal(&delete(), input),
            ProtocolError::BadLineEnding,
            "{}",
            input.escape_ascii()
        );
    }
    // Detected as soon as the LF arrives, byte by byte.
    assert_eq!(
        fatal_at(&delete(), b"DELETED\nmore"),
        (8, ProtocolError::BadLineEnding)
    );
}

#[test]
fn cr_inside_a_line_is_rejected() {
    for input in [
        &b"DELE\rTED\r\n"[..],
        b"DELETED\r\r\n",
        b"\rDELETED\r\n",
        b"INSERTED\r1\r\n",
        b"DELETED\rX",
    ] {
        assert_eq!(
            fatal(&delete(), input),
            ProtocolError::BadLineEnding,
            "{}",
            input.escape_ascii()
        );
    }
    // A CR at the end may still become CRLF: wait. A byte after it that is
    // not LF is an error at once, before any line end.
    let mut conn = with_in_flight(&delete());
    let mut src = BytesMut::from(&b"DELETED\r"[..]);
    assert_eq!(conn.poll_response(&mut src), Ok(None));
    assert_eq!(
        fatal_at(&delete(), b"DELETED\rX\r\n"),
        (9, ProtocolError::BadLineEnding)
    );
}

#[test]
fn line_length_limit_is_208_bytes_with_crlf() {
    assert_eq!(MAX_REPLY_LINE, 208);
    let too_long = ProtocolError::LineTooLong { max: 208 };
    // 208 bytes without CRLF: no reply line can be that long.
    assert_eq!(fatal(&delete(), &[b'A'; 208]), too_long);
    assert_eq!(fatal(&delete(), &[b'A'; 5000]), too_long);
    // 207 bytes without CRLF: could still be a 208-byte line.
    let mut conn = with_in_flight(&delete());
    assert_eq!(
        conn.poll_response(&mut BytesMut::from(&[b'A'; 207][..])),
        Ok(None)
    );
    assert!(conn.is_open());
    // Byte by byte, the error comes exactly with the 208th byte.
    assert_eq!(fatal_at(&delete(), &[b'N'; 300]), (208, too_long));
    // 207 bytes + CR: the LF would make it 209.
    let mut line = vec![b'A'; 207];
    line.push(b'\r');
    assert_eq!(fatal(&delete(), &line), too_long);

    // Exactly 208 bytes: USING with a 200-byte name is valid.
    let name = "t".repeat(200);
    let using = format!("USING {name}\r\n");
    assert_eq!(using.len(), 208);
    let mut conn = with_in_flight(&cmd::Use::new(name.as_str()).unwrap());
    let mut src = BytesMut::from(using.as_bytes());
    let (_, r) = conn.poll_response(&mut src).unwrap().unwrap();
    assert_eq!(cmd::Use::from_response_checked(r), name);
    assert_eq!(conn.session().using().as_str(), name);

    // 209 bytes: a 201-byte name is too long for any reply.
    let using = format!("USING {name}x\r\n");
    assert_eq!(fatal(&cmd::ListTubeUsed, using.as_bytes()), too_long);
    // ... and, byte by byte, rejected at 208 before its CRLF arrives.
    assert_eq!(
        fatal_at(&cmd::ListTubeUsed, using.as_bytes()),
        (208, too_long)
    );
}

/// `Request::from_response` with the output unwrapped, as a string.
trait FromResponseChecked {
    fn from_response_checked(r: Response) -> String;
}

impl FromResponseChecked for cmd::Use {
    fn from_response_checked(r: Response) -> String {
        use beanstalk_proto::Request;
        Self::from_response(r).unwrap().as_str().to_owned()
    }
}

// ---------------------------------------------------------------------------
// Reply words and arguments
// ---------------------------------------------------------------------------

#[test]
fn unknown_and_lowercase_words() {
    for input in [
        &b"HELLO\r\n"[..],
        b"\r\n",
        b"inserted 1\r\n",
        b"deleted\r\n",
        b"Deleted\r\n",
        b"DELETEDX\r\n",
        b"DELETE\r\n",
        b"INSERTED_ 1\r\n",
        b" DELETED\r\n",
        b"DELETED\t\r\n",
        b"DELETED\0\r\n",
        b"\xffDELETED\r\n",
    ] {
        assert_eq!(
            fatal(&delete(), input),
            ProtocolError::UnknownReply,
            "{}",
            input.escape_ascii()
        );
    }
}

#[test]
fn malformed_arguments() {
    let cases: &[(&[u8], W)] = &[
        // double spaces
        (b"INSERTED  1\r\n", W::Inserted),
        (b"RESERVED 1  3\r\nabc\r\n", W::Reserved),
        (b"RESERVED  1 3\r\nabc\r\n", W::Reserved),
        (b"WATCHING  1\r\n", W::Watching),
        (b"USING  default\r\n", W::Using),
        // signs
        (b"INSERTED +1\r\n", W::Inserted),
        (b"INSERTED -1\r\n", W::Inserted),
        (b"WATCHING -1\r\n", W::Watching),
        (b"KICKED +3\r\n", W::Kicked),
        (b"RESERVED 1 -3\r\n", W::Reserved),
        (b"OK +3\r\n", W::Ok),
        // trailing spaces
        (b"INSERTED 1 \r\n", W::Inserted),
        (b"DELETED \r\n", W::Deleted),
        (b"BURIED \r\n", W::Buried),
        (b"KICKED \r\n", W::Kicked),
        (b"USING default \r\n", W::Using),
        (b"RESERVED 1 3 \r\n", W::Reserved),
        (b"OK 3 \r\n", W::Ok),
        // overflowing u64
        (b"INSERTED 18446744073709551616\r\n", W::Inserted),
        (b"INSERTED 99999999999999999999999\r\n", W::Inserted),
        (b"RESERVED 18446744073709551616 1\r\n", W::Reserved),
        (b"KICKED 18446744073709551616\r\n", W::Kicked),
        (b"WATCHING 18446744073709551616\r\n", W::Watching),
        (b"OK 18446744073709551616\r\n", W::Ok),
        // other junk and missing or extra arguments
        (b"INSERTED\r\n", W::Inserted),
        (b"INSERTED 0x1\r\n", W::Inserted),
        (b"INSERTED 1a\r\n", W::Inserted),
        (b"INSERTED 1 2\r\n", W::Inserted),
        (b"WATCHING\r\n", W::Watching),
        (b"RESERVED 1\r\n", W::Reserved),
        (b"RESERVED\r\n", W::Reserved),
        (b"FOUND 1 2 3\r\n", W::Found),
        (b"OK\r\n", W::Ok),
        (b"USING\r\n", W::Using),
        (b"USING -default\r\n", W::Using),
        (b"USING a*b\r\n", W::Using),
        (b"DELETED 1\r\n", W::Deleted),
        (b"TIMED_OUT now\r\n", W::TimedOut),
        (b"NOT_FOUND 1\r\n", W::NotFound),
        (b"BAD_FORMAT x\r\n", W::BadFormat),
    ];
    for (input, word) in cases {
        assert_eq!(
            fatal(&delete(), input),
            ProtocolError::MalformedReply(*word),
            "{}",
            input.escape_ascii()
        );
    }
    // u64::MAX itself is fine.
    let mut conn = with_in_flight(&cmd::Put::new("x", Default::default()).unwrap());
    let (_, r) = conn
        .poll_response(&mut BytesMut::from(
            &b"INSERTED 18446744073709551615\r\n"[..],
        ))
        .unwrap()
        .unwrap();
    assert_eq!(r, Response::Inserted(u64::MAX));
    // Leading zeros are digits.
    let mut conn = with_in_flight(&cmd::Kick::new(1));
    let (_, r) = conn
        .poll_response(&mut BytesMut::from(&b"KICKED 007\r\n"[..]))
        .unwrap()
        .unwrap();
    assert_eq!(r, Response::Kicked(Some(7)));
}

// ---------------------------------------------------------------------------
// Bodies
// ---------------------------------------------------------------------------

#[test]
fn job_body_over_the_cap_is_dropped_and_the_connection_stays_in_sync() {
    // Default: 65,535-byte jobs. The line says so; the body is then read
    // and dropped as it comes, and the command gets the job's id.
    let too_large = |id| Response::JobTooLarge {
        id,
        len: 65_536,
        max: 65_535,
    };
    for (request, line) in [
        (&reserve() as &dyn Sendable, &b"RESERVED 7 65536\r\n"[..]),
        (&cmd::Peek::new(7), b"FOUND 7 65536\r\n"),
    ] {
        let mut conn = Connection::default();
        request.send_on(&mut conn);
        conn.send(&cmd::Delete::new(7), &mut WriteBuf::new())
            .unwrap();
        let mut input = line.to_vec();
        input.extend(std::iter::repeat_n(b'x', 65_536));
        input.extend_from_slice(b"\r\nDELETED\r\n");
        // Byte by byte: nothing is kept, and nothing comes early.
        let mut src = BytesMut::new();
        let mut replies = Vec::new();
        for (at, byte) in input.iter().enumerate() {
            src.extend_from_slice(&[*byte]);
            while let Some((_, reply)) = conn.poll_response(&mut src).unwrap() {
                replies.push((at + 1, reply));
            }
            assert!(src.len() <= line.len(), "{} bytes kept", src.len());
        }
        let body_end = line.len() + 65_536 + 2;
        assert_eq!(
            replies,
            [
                (body_end, too_large(7)),
                (
                    input.len(),
                    Response::Word(beanstalk_proto::ReplyWord::Deleted)
                )
            ]
        );
        assert!(conn.is_open());
    }
    // In one piece too, and as the command's typed error.
    let mut conn = with_in_flight(&reserve());
    let mut src = BytesMut::from(&b"RESERVED 9 65536\r\n"[..]);
    src.extend_from_slice(&vec![b'x'; 65_536]);
    src.extend_from_slice(b"\r\n");
    let (_, reply) = conn.poll_response(&mut src).unwrap().unwrap();
    assert!(matches!(
        <cmd::Reserve as beanstalk_proto::Request>::from_response(reply),
        Err(beanstalk_proto::Error::JobTooLarge {
            id: 9,
            len: 65_536,
            max: 65_535
        })
    ));
    assert!(src.is_empty());
    // A body not followed by CRLF is out of sync, as under the cap.
    let mut input = b"RESERVED 1 65536\r\n".to_vec();
    input.extend(std::iter::repeat_n(b'x', 65_538));
    assert_eq!(fatal(&reserve(), &input), ProtocolError::BodyNotTerminated);
    // The server closing mid-body loses the reply.
    let mut conn = with_in_flight(&reserve());
    let mut src = BytesMut::from(&b"RESERVED 1 65536\r\nxx"[..]);
    assert_eq!(conn.poll_response(&mut src), Ok(None));
    assert_eq!(
        conn.handle_eof(&src),
        Err(ProtocolError::UnexpectedEof { in_flight: 1 })
    );
    // A job reply the oldest command cannot get still breaks the stream.
    assert!(matches!(
        fatal(&cmd::Peek::new(1), b"RESERVED 1 65536\r\n"),
        ProtocolError::UnexpectedReply { .. }
    ));
    // Exactly at the cap: the line is accepted and the body awaited.
    let mut conn = with_in_flight(&reserve());
    let mut src = BytesMut::from(&b"RESERVED 1 65535\r\n"[..]);
    assert_eq!(conn.poll_response(&mut src), Ok(None));
    src.extend_from_slice(&vec![b'x'; 65_535]);
    src.extend_from_slice(b"\r\n");
    let (_, r) = conn.poll_response(&mut src).unwrap().unwrap();
    assert!(matches!(r, Response::Job(ref j) if j.body.len() == 65_535));
    // Lengths no beanstalkd announces (its jobs stay under 4 GiB) come
    // from a broken peer: never an allocation, nor a wait for them.
    assert_eq!(
        fatal(&reserve(), b"RESERVED 1 18446744073709551615\r\n"),
        ProtocolError::BodyTooLarge {
            len: u64::MAX,
            max: 65_535
        }
    );
    assert_eq!(
        fatal(&reserve(), b"RESERVED 1 4294967296\r\n"),
        ProtocolError::BodyTooLarge {
            len: 1 << 32,
            max: 65_535
        }
    );

    // A configured job cap.
    let config = Config::default().max_job_size(10);
    let mut conn = Connection::new(config);
    conn.send(&reserve(), &mut WriteBuf::new()).unwrap();
    let reply = conn.poll_response(&mut BytesMut::from(
        &b"RESERVED 1 11\r\n0123456789a\r\n"[..],
    ));
    assert!(
        matches!(
            reply,
            Ok(Some((
                _,
                Response::JobTooLarge {
                    id: 1,
                    len: 11,
                    max: 10
                }
            )))
        ),
        "{reply:?}"
    );
    let mut conn = Connection::new(config);
    conn.send(&reserve(), &mut WriteBuf::new()).unwrap();
    let (_, r) = conn
        .poll_response(&mut BytesMut::from(&b"RESERVED 1 10\r\n0123456789\r\n"[..]))
        .unwrap()
        .unwrap();
    assert!(matches!(r, Response::Job(ref j) if j.body[..] == b"0123456789"[..]));

    // The YAML cap (stats and lists).
    let config = Config::default().max_yaml_body(100);
    let mut conn = Connection::new(config);
    conn.send(&cmd::Stats, &mut WriteBuf::new()).unwrap();
    assert_eq!(
        conn.poll_response(&mut BytesMut::from(&b"OK 101\r\n"[..])),
        Err(ProtocolError::BodyTooLarge { len: 101, max: 100 })
    );
    let mut conn = Connection::new(config);
    conn.send(&cmd::ListTubes, &mut WriteBuf::new()).unwrap();
    assert_eq!(
        conn.poll_response(&mut BytesMut::from(&b"OK 100\r\n"[..])),
        Ok(None)
    );
    // The default YAML cap is 1 MiB.
    assert_eq!(
        fatal(&cmd::Stats, b"OK 1048577\r\n"),
        ProtocolError::BodyTooLarge {
            len: 1_048_577,
            max: 1 << 20
        }
    );
    // The job cap does not apply to YAML, nor the YAML cap to jobs.
    let mut conn = with_in_flight(&cmd::Stats);
    assert_eq!(
        conn.poll_response(&mut BytesMut::from(&b"OK 1048576\r\n"[..])),
        Ok(None)
    );
}

#[test]
fn body_must_be_followed_by_crlf() {
    for input in [
        &b"RESERVED 1 3\r\nabcXY"[..],
        b"RESERVED 1 3\r\nabcX\n",
        b"RESERVED 1 3\r\nabc\n\n",
        b"RESERVED 1 3\r\nabc\r\r",
        b"RESERVED 1 3\r\nabc\n\r",
        b"RESERVED 1 3\r\nabc\rX",
        b"RESERVED 1 3\r\nabcd\r\n",
        b"RESERVED 1 0\r\nXY",
        b"RESERVED 1 2\r\nabc\r\n",
    ] {
        assert_eq!(
            fatal(&reserve(), input),
            ProtocolError::BodyNotTerminated,
            "{}",
            input.escape_ascii()
        );
    }
    assert_eq!(
        fatal(&cmd::PeekReady, b"FOUND 1 1\r\nab\r\n"),
        ProtocolError::BodyNotTerminated
    );
    assert_eq!(
        fatal(&cmd::Stats, b"OK 1\r\nab\r\n"),
        ProtocolError::BodyNotTerminated
    );
    // Until the two bytes after the body are there, nothing is decided.
    let mut conn = with_in_flight(&reserve());
    let mut src = BytesMut::from(&b"RESERVED 1 3\r\nabc\r"[..]);
    assert_eq!(conn.poll_response(&mut src), Ok(None));
    assert!(conn.is_open());
    // Byte by byte, the error comes with the first wrong byte after the
    // body: a peer that then stalls does not hold the command.
    for (input, at) in [
        (&b"RESERVED 1 3\r\nabcXY"[..], 18),
        (b"RESERVED 1 3\r\nabc\n\r", 18),
        (b"RESERVED 1 3\r\nabc\rX", 19),
    ] {
        assert_eq!(
            fatal_at(&reserve(), input),
            (at, ProtocolError::BodyNotTerminated),
            "{}",
            input.escape_ascii()
        );
    }
    // The same after a body past the cap, which is dropped as it comes.
    let mut input = b"RESERVED 1 65536\r\n".to_vec();
    input.extend(std::iter::repeat_n(b'x', 65_536));
    let body_end = input.len();
    for (trailer, at) in [(&b"X"[..], body_end + 1), (b"\rX", body_end + 2)] {
        let mut input = input.clone();
        input.extend_from_slice(trailer);
        assert_eq!(
            fatal_at(&reserve(), &input),
            (at, ProtocolError::BodyNotTerminated),
            "{}",
            trailer.escape_ascii()
        );
    }
}

// ---------------------------------------------------------------------------
// Unsolicited replies, EOF, abandon, quit
// ---------------------------------------------------------------------------

#[test]
fn a_reply_with_nothing_in_flight_is_unsolicited() {
    let mut conn = Connection::default();
    let mut src = BytesMut::from(&b"INSERTED 1\r\n"[..]);
    let err = conn.poll_response(&mut src).unwrap_err();
    assert_eq!(err, ProtocolError::Unsolicited(W::Inserted));
    assert_sticky(&mut conn, err);

    // One reply too many.
    let mut conn = with_in_flight(&delete());
    let mut src = BytesMut::from(&b"DELETED\r\nRESERVED 1 1\r\nx\r\n"[..]);
    assert!(conn.poll_response(&mut src).unwrap().is_some());
    let err = conn.poll_response(&mut src).unwrap_err();
    assert_eq!(err, ProtocolError::Unsolicited(W::Reserved));
    assert_sticky(&mut conn, err);

    // Nothing at all in the buffer is no reply.
    let mut conn = Connection::default();
    assert_eq!(conn.poll_response(&mut BytesMut::new()), Ok(None));
    assert!(conn.is_open());
}

#[test]
fn eof_with_commands_in_flight_or_mid_reply_breaks() {
    // Two commands, no reply.
    let mut conn = Connection::default();
    let mut out = WriteBuf::new();
    conn.send(&delete(), &mut out).unwrap();
    conn.send(&reserve(), &mut out).unwrap();
    let err = conn.handle_eof(&[]).unwrap_err();
    assert_eq!(err, ProtocolError::UnexpectedEof { in_flight: 2 });
    assert_sticky(&mut conn, err);

    // Mid-reply: part of the line arrived.
    let mut conn = with_in_flight(&delete());
    let mut src = BytesMut::from(&b"DELET"[..]);
    assert_eq!(conn.poll_response(&mut src), Ok(None));
    let err = conn.handle_eof(&src).unwrap_err();
    assert_eq!(err, ProtocolError::UnexpectedEof { in_flight: 1 });
    assert_sticky(&mut conn, err);

    // Mid-body.
    let mut conn = with_in_flight(&reserve());
    let mut src = BytesMut::from(&b"RESERVED 1 10\r\nabc"[..]);
    assert_eq!(conn.poll_response(&mut src), Ok(None));
    let err = conn.handle_eof(&src).unwrap_err();
    assert_eq!(err, ProtocolError::UnexpectedEof { in_flight: 1 });
    assert_sticky(&mut conn, err);

    // Nothing in flight, but unread bytes: not a clean close either.
    let mut conn = Connection::default();
    let err = conn.handle_eof(b"DEL").unwrap_err();
    assert_eq!(err, ProtocolError::UnexpectedEof { in_flight: 0 });
    assert_sticky(&mut conn, err);
}

#[test]
fn clean_eof_closes() {
    let mut conn = Connection::default();
    conn.send(&delete(), &mut WriteBuf::new()).unwrap();
    let mut src = BytesMut::from(&b"DELETED\r\n"[..]);
    assert!(conn.poll_response(&mut src).unwrap().is_some());
    assert_eq!(conn.handle_eof(&src), Ok(()));
    assert_eq!(conn.state(), State::Closed);
    assert!(!conn.is_open());
    let mut out = WriteBuf::new();
    assert_eq!(conn.send(&delete(), &mut out), Err(CommandError::Closed));
    assert!(out.is_empty());
    assert_eq!(conn.poll_response(&mut BytesMut::new()), Ok(None));
    // A second EOF report is harmless.
    assert_eq!(conn.handle_eof(&[]), Ok(()));
    assert_eq!(conn.state(), State::Closed);
}

#[test]
fn abandon_breaks_for_good() {
    let mut conn = Connection::default();
    let mut out = WriteBuf::new();
    conn.send(&reserve(), &mut out).unwrap();
    conn.send(&delete(), &mut out).unwrap();
    conn.abandon();
    assert_sticky(&mut conn, ProtocolError::Abandoned);
    // A late reply is never taken for the answer to anything.
    assert_eq!(
        conn.poll_response(&mut BytesMut::from(&b"RESERVED 1 1\r\nx\r\n"[..])),
        Err(ProtocolError::Abandoned)
    );

    // Mid-reply.
    let mut conn = with_in_flight(&reserve());
    let mut src = BytesMut::from(&b"RESERVED 1 5\r\nab"[..]);
    assert_eq!(conn.poll_response(&mut src), Ok(None));
    conn.abandon();
    assert_sticky(&mut conn, ProtocolError::Abandoned);

    // On an idle connection too.
    let mut conn = Connection::default();
    conn.abandon();
    assert_sticky(&mut conn, ProtocolError::Abandoned);

    // On a broken connection, the first cause stays.
    let mut conn = with_in_flight(&delete());
    let err = conn
        .poll_response(&mut BytesMut::from(&b"HELLO\r\n"[..]))
        .unwrap_err();
    conn.abandon();
    assert_eq!(conn.state(), State::Broken(err));
}

#[test]
fn quit_closes_for_sending_but_earlier_replies_still_decode() {
    use beanstalk_proto::Request;
    let mut conn = Connection::default();
    let mut out = WriteBuf::new();
    let a = conn.send(&delete(), &mut out).unwrap();
    let b = conn.send(&reserve(), &mut out).unwrap();
    let q = conn.send(&cmd::Quit, &mut out).unwrap();
    assert_eq!((a.get(), b.get(), q.get()), (0, 1, 2));
    assert_eq!(common::drain(&mut out), b"delete 1\r\nreserve\r\nquit\r\n");
    assert_eq!(conn.state(), State::Quitting);
    assert!(!conn.is_open());
    // Nothing more can be sent, and nothing is encoded.
    assert_eq!(conn.send(&delete(), &mut out), Err(CommandError::Closed));
    assert_eq!(conn.send(&cmd::Quit, &mut out), Err(CommandError::Closed));
    assert_eq!(
        conn.send(&cmd::Put::new("x", Default::default()).unwrap(), &mut out),
        Err(CommandError::Closed)
    );
    assert!(out.is_empty());

    // The replies to the commands before quit still decode, in order.
    let mut src = BytesMut::from(&b"DELETED\r\nRESERVED 4 2\r\nhi\r\n"[..]);
    let (t, r) = conn.poll_response(&mut src).unwrap().unwrap();
    assert_eq!((t, r), (a, Response::Word(W::Deleted)));
    let (t, r) = conn.poll_response(&mut src).unwrap().unwrap();
    assert_eq!(t, b);
    let job = cmd::Reserve::from_response(r).unwrap();
    assert_eq!((job.id, &job.body[..]), (4, &b"hi"[..]));
    // Then quit completes locally, without bytes from the server.
    assert!(src.is_empty());
    let (t, r) = conn.poll_response(&mut src).unwrap().unwrap();
    assert_eq!((t, &r), (q, &Response::Closing));
    assert_eq!(cmd::Quit::from_response(r).unwrap(), ());
    assert_eq!(conn.in_flight(), 0);
    assert_eq!(conn.poll_response(&mut src), Ok(None));
    assert_eq!(conn.state(), State::Quitting);
    // The server closes: that is the expected end.
    assert_eq!(conn.handle_eof(&[]), Ok(()));
    assert_eq!(conn.state(), State::Closed);
    assert_eq!(conn.send(&delete(), &mut out), Err(CommandError::Closed));
    assert_eq!(conn.poll_response(&mut BytesMut::new()), Ok(None));

    // quit is not answered before the replies ahead of it.
    let mut conn = with_in_flight(&delete());
    conn.send(&cmd::Quit, &mut WriteBuf::new()).unwrap();
    let mut src = BytesMut::from(&b"DELE"[..]);
    assert_eq!(conn.poll_response(&mut src), Ok(None));
    src.extend_from_slice(b"TED\r\n");
    let (t, _) = conn.poll_response(&mut src).unwrap().unwrap();
    assert_eq!(t.get(), 0);
    let (t, r) = conn.poll_response(&mut src).unwrap().unwrap();
    assert_eq!((t.get(), r), (1, Response::Closing));

    // Quit, then the server closes before answering an earlier command.
    let mut conn = with_in_flight(&delete());
    conn.send(&cmd::Quit, &mut WriteBuf::new()).unwrap();
    let err = conn.handle_eof(&[]).unwrap_err();
    assert!(
        matches!(err, ProtocolError::UnexpectedEof { .. }),
        "{err:?}"
    );
    assert_sticky(&mut conn, err);

    // Quit, then a reply nothing asked for (after quit's own completion).
    let mut conn = Connection::default();
    conn.send(&cmd::Quit, &mut WriteBuf::new()).unwrap();
    let mut src = BytesMut::from(&b"DELETED\r\n"[..]);
    let (_, r) = conn.poll_response(&mut src).unwrap().unwrap();
    assert_eq!(r, Response::Closing);
    let err = conn.poll_response(&mut src).unwrap_err();
    assert_eq!(err, ProtocolError::Unsolicited(W::Deleted));
    assert_sticky(&mut conn, err);

    // Quit on an idle connection, then EOF before anyone polled: clean, and
    // quit's completion is still handed out.
    let mut conn = Connection::default();
    let q = conn.send(&cmd::Quit, &mut WriteBuf::new()).unwrap();
    assert_eq!(conn.handle_eof(&[]), Ok(()));
    assert_eq!(conn.state(), State::Closed);
    assert_eq!(
        conn.poll_response(&mut BytesMut::new()),
        Ok(Some((q, Response::Closing)))
    );
    // EOF with bytes half-received after quit is not clean.
    let mut conn = Connection::default();
    conn.send(&cmd::Quit, &mut WriteBuf::new()).unwrap();
    let err = conn.handle_eof(b"DEL").unwrap_err();
    assert!(
        matches!(err, ProtocolError::UnexpectedEof { .. }),
        "{err:?}"
    );
}

#[test]
fn every_fatal_error_is_sticky() {
    // One instance of every ProtocolError variant the decoder produces,
    // each checked with assert_sticky (inside `fatal`).
    let put = cmd::Put::new("x", Default::default()).unwrap();
    let seen = [
        fatal(&delete(), &[b'A'; 300]),
        fatal(&delete(), b"DELETED\n"),
        fatal(&delete(), b"HELLO\r\n"),
        fatal(&delete(), b"INSERTED x\r\n"),
        fatal(&cmd::Stats, b"OK 9999999\r\n"),
        fatal(&reserve(), b"RESERVED 1 1\r\nxyz"),
        fatal(&delete(), b"INSERTED 1\r\n"),
        fatal(&put, b"BAD_FORMAT\r\n"),
        fatal(&cmd::Use::new("a").unwrap(), b"USING b\r\n"),
    ];
    let kinds: std::collections::HashSet<_> = seen.iter().map(std::mem::discriminant).collect();
    assert_eq!(kinds.len(), seen.len(), "{seen:?}");
}

// ---------------------------------------------------------------------------
// The stateless frame layer
// ---------------------------------------------------------------------------

#[test]
fn parse_frame_reports_partial_and_lengths() {
    let limits = Limits::default();
    let input = b"RESERVED 7 5\r\nhello\r\nINSERTED 1\r\n";
    for end in 0..21 {
        assert_eq!(
            frame::parse_frame(&input[..end], &limits),
            Ok(Status::Partial),
            "{end}"
        );
    }
    let Ok(Status::Complete(f)) = frame::parse_frame(input, &limits) else {
        panic!()
    };
    assert_eq!(f.head, Head::Reserved { id: 7, len: 5 });
    assert_eq!((f.line_len, f.len), (14, 21));
    assert_eq!(f.body(input), Some(&b"hello"[..]));
    let Ok(Status::Complete(f)) = frame::parse_frame(&input[21..], &limits) else {
        panic!()
    };
    assert_eq!(f.head, Head::Inserted(1));
    assert_eq!((f.line_len, f.len), (12, 12));
    assert_eq!(f.body(&input[21..]), None);
    assert_eq!(frame::find_line_end(b"DELETED\r\nX"), Ok(Some(9)));
    assert_eq!(frame::find_line_end(b"DELETED\r"), Ok(None));
    assert_eq!(frame::find_line_end(b""), Ok(None));
}

/// Regression (frame.rs:287): `parse_frame` promises never to panic, but
/// `line_len + body_len + 2` overflows when the cap allows bodies near
/// `usize::MAX` ("no limit"), e.g. `Limits::with_max_job_body(usize::MAX)`
/// or `Config::max_yaml_body(usize::MAX)`. In debug builds this panics with
/// "attempt to add with overflow"; in release it wraps and misparses.
/// Expected: `Ok(Status::Partial)` (or an error), never a panic.
#[test]
fn body_length_near_usize_max_does_not_overflow() {
    let limits = Limits::with_max_job_body(usize::MAX);
    let result = std::panic::catch_unwind(|| {
        frame::parse_frame(b"RESERVED 1 18446744073709551615\r\nxx", &limits)
    });
    assert!(
        matches!(
            result,
            Ok(Ok(Status::Partial)) | Ok(Err(ProtocolError::BodyTooLarge { .. }))
        ),
        "parse_frame with a body length near usize::MAX: {result:?}"
    );

    let result = std::panic::catch_unwind(|| {
        let mut conn = Connection::new(Config::default().max_yaml_body(usize::MAX));
        conn.send(&cmd::Stats, &mut WriteBuf::new()).unwrap();
        conn.poll_response(&mut BytesMut::from(&b"OK 18446744073709551615\r\n"[..]))
    });
    assert!(
        matches!(
            result,
            Ok(Ok(None)) | Ok(Err(ProtocolError::BodyTooLarge { .. }))
        ),
        "Connection with max_yaml_body(usize::MAX): {result:?}"
    );
}

/// A frame made by hand (its fields are public) whose lengths do not add
/// up has no body, rather than a panic.
#[test]
fn a_hand_made_frame_past_usize_has_no_body() {
    let frame = frame::Frame {
        head: Head::Reserved {
            id: 1,
            len: usize::MAX,
        },
        line_len: 10,
        len: usize::MAX,
    };
    assert_eq!(frame.body(b"RESERVED 1 1\r\nx\r\n"), None);
}

#[test]
fn a_job_past_the_cap_with_any_id_the_line_parser_takes_is_dropped() {
    // Ids are u64s: the general parser takes all 20 digits of the largest
    // (and leading zeros), under the cap and over it alike.
    for (line, id) in [
        (&b"RESERVED 18446744073709551615 65536\r\n"[..], u64::MAX),
        (
            b"RESERVED 10000000000000000000 65536\r\n",
            10_000_000_000_000_000_000,
        ),
        (b"RESERVED 7 00000000000000000065536\r\n", 7),
    ] {
        let mut conn = with_in_flight(&reserve());
        conn.send(&cmd::Delete::new(1), &mut WriteBuf::new())
            .unwrap();
        let mut src = BytesMut::from(line);
        src.extend_from_slice(&vec![b'x'; 65_536]);
        src.extend_from_slice(b"\r\nDELETED\r\n");
        assert_eq!(
            conn.poll_response(&mut src).map(|r| r.map(|(_, r)| r)),
            Ok(Some(Response::JobTooLarge {
                id,
                len: 65_536,
                max: 65_535
            })),
            "{}",
            String::from_utf8_lossy(line)
        );
        assert_eq!(
            conn.poll_response(&mut src).map(|r| r.map(|(_, r)| r)),
            Ok(Some(Response::Word(W::Deleted)))
        );
    }
}
