//! Pipelines: a thousand mixed commands answered in random-sized chunks,
//! errors in the middle, session tracking (only what the server confirmed),
//! restoring a session, and per-command reply timeouts.

mod common;

use std::time::Duration;

use beanstalk_proto::connection::check_restored;
use beanstalk_proto::frame::ReplyWord as W;
use beanstalk_proto::{
    CommandError, Config, Connection, Error, ProtocolError, PutOptions, ReplyTimeout, Response,
    ServerError, Session, State, WriteBuf, cmd,
};
use bytes::{Buf, BytesMut};
use common::{
    CmdSpec, Fail, Outcome, ReplySpec, Step, V, drain, model_session, oracle, pair_strategy,
    run_pipeline, session_of,
};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{RngAlgorithm, TestRng, TestRunner};

/// `n` random (command, fitting reply) pairs from a deterministic runner.
fn random_pairs(runner: &mut TestRunner, n: usize) -> Vec<(CmdSpec, ReplySpec)> {
    let strategy = pair_strategy();
    (0..n)
        .map(|_| strategy.new_tree(runner).unwrap().current())
        .collect()
}

#[test]
fn thousand_mixed_commands_in_random_chunks() {
    let mut runner = TestRunner::new_with_rng(
        ProptestConfig::default(),
        TestRng::deterministic_rng(RngAlgorithm::XorShift),
    );
    for round in 0..4 {
        let pairs = random_pairs(&mut runner, 1000);
        let steps: Vec<Step> = pairs.iter().map(|(c, r)| Step::from_spec(c, r)).collect();
        let expected: Vec<Outcome> = steps.iter().map(|s| s.expect.clone()).collect();
        assert!(
            expected.iter().all(|o| !matches!(o, Err(Fail::Broken(_)))),
            "the generator only makes replies that fit"
        );
        // The mix really is mixed: successes and errors of several kinds.
        let errors = expected.iter().filter(|o| o.is_err()).count();
        let not_found = expected
            .iter()
            .filter(|o| matches!(o, Err(Fail::NotFound)))
            .count();
        let server = expected
            .iter()
            .filter(|o| matches!(o, Err(Fail::Server(_))))
            .count();
        let jobs = expected
            .iter()
            .filter(|o| matches!(o, Ok(V::Job { .. })))
            .count();
        assert!(errors > 100 && not_found > 20 && server > 20 && jobs > 50);
        let kinds: std::collections::HashSet<&str> = pairs.iter().map(|(c, _)| c.name()).collect();
        assert_eq!(kinds.len(), 24, "every command appears");

        let rng = runner.rng();
        let sizes: Vec<usize> = (0..500)
            .map(|_| match rng.random_range(0..10) {
                0 => rng.random_range(200..5000),
                1 => 1,
                _ => rng.random_range(1..64),
            })
            .collect();
        let (got, conn) = run_pipeline(&steps, Config::default(), &sizes);
        assert_eq!(got.len(), expected.len());
        for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
            assert_eq!(g, e, "round {round}, reply {i}: {}", steps[i].label);
        }
        let confirmed: Vec<(CmdSpec, Outcome)> =
            pairs.iter().map(|(c, _)| c.clone()).zip(got).collect();
        assert_eq!(
            session_of(&conn),
            model_session(&confirmed),
            "round {round}"
        );
        // Same result whole and byte by byte.
        let (whole, _) = run_pipeline(&steps, Config::default(), &[usize::MAX]);
        assert_eq!(whole, expected);
        if round == 0 {
            let (bytewise, _) = run_pipeline(&steps, Config::default(), &[1]);
            assert_eq!(bytewise, expected);
        }
    }
}

#[test]
fn errors_in_the_middle_do_not_disturb_the_rest() {
    use CmdSpec as C;
    use ReplySpec as R;
    let put = |body: &[u8]| C::Put {
        body: body.to_vec(),
        pri: 1,
        delay: 0,
        ttr: 5,
    };
    let script: Vec<(CmdSpec, ReplySpec, Outcome)> = vec![
        (
            put(b"a"),
            R::Inserted(1),
            Ok(V::Receipt {
                id: 1,
                buried: false,
            }),
        ),
        (C::Delete(99), R::Word(W::NotFound), Err(Fail::NotFound)),
        (
            C::ReserveWithTimeout(0),
            R::Word(W::TimedOut),
            Err(Fail::TimedOut),
        ),
        (
            C::StatsTube("gone".into()),
            R::Word(W::NotFound),
            Err(Fail::NotFound),
        ),
        (
            C::Watch("w".into()),
            R::Word(W::OutOfMemory),
            Err(Fail::Server(ServerError::OutOfMemory)),
        ),
        (
            C::ReserveJob(5),
            R::Word(W::UnknownCommand),
            Err(Fail::Server(ServerError::UnknownCommand)),
        ),
        (
            put(b"b\r\nc"),
            R::BuriedId(2),
            Ok(V::Receipt {
                id: 2,
                buried: true,
            }),
        ),
        (put(b"big"), R::Word(W::JobTooBig), Err(Fail::JobTooBig)),
        (put(b"x"), R::Word(W::Draining), Err(Fail::Draining)),
        (
            C::Reserve,
            R::Reserved(1, b"a".to_vec()),
            Ok(V::Job {
                id: 1,
                body: b"a".to_vec(),
            }),
        ),
        (C::Peek(7), R::Word(W::NotFound), Ok(V::NoJob)),
        (
            C::Ignore("default".into()),
            R::Word(W::NotIgnored),
            Err(Fail::NotIgnored),
        ),
        (
            C::Reserve,
            R::Word(W::DeadlineSoon),
            Err(Fail::DeadlineSoon),
        ),
        (
            C::Delete(1),
            R::Word(W::InternalError),
            Err(Fail::Server(ServerError::InternalError)),
        ),
        (C::Delete(1), R::Word(W::Deleted), Ok(V::Unit)),
        (C::Kick(5), R::KickedN(0), Ok(V::Count(0))),
        (
            C::PeekBuried,
            R::Found(2, b"b\r\nc".to_vec()),
            Ok(V::Job {
                id: 2,
                body: b"b\r\nc".to_vec(),
            }),
        ),
    ];
    let steps: Vec<Step> = script
        .iter()
        .map(|(c, r, e)| {
            assert_eq!(&oracle(c, r), e, "script agrees with the oracle");
            Step::from_spec(c, r)
        })
        .collect();
    let expected: Vec<Outcome> = script.into_iter().map(|(_, _, e)| e).collect();
    for sizes in [&[usize::MAX][..], &[1], &[2, 3, 5, 7, 11, 13]] {
        let (got, conn) = run_pipeline(&steps, Config::default(), sizes);
        assert_eq!(got, expected, "{sizes:?}");
        assert!(conn.is_open());
    }
}

#[test]
fn a_fatal_reply_in_the_middle_stops_the_pipeline() {
    let mut conn = Connection::default();
    let mut out = WriteBuf::new();
    for id in 1..=10 {
        conn.send(&cmd::Delete::new(id), &mut out).unwrap();
    }
    let mut src = BytesMut::from(
        &b"DELETED\r\nNOT_FOUND\r\nDELETED\r\nDELETED\r\nINSERTED 5\r\nDELETED\r\nDELETED\r\n"[..],
    );
    for expected in [W::Deleted, W::NotFound, W::Deleted, W::Deleted] {
        let (_, r) = conn.poll_response(&mut src).unwrap().unwrap();
        assert_eq!(r, Response::Word(expected));
    }
    let err = ProtocolError::UnexpectedReply {
        command: "delete",
        reply: W::Inserted,
    };
    assert_eq!(conn.poll_response(&mut src), Err(err));
    assert_eq!(conn.in_flight(), 0, "the rest is abandoned");
    assert_eq!(conn.poll_response(&mut src), Err(err));
    assert_eq!(
        conn.send(&cmd::Delete::new(11), &mut out),
        Err(CommandError::Broken(err))
    );
}

#[test]
fn tokens_follow_send_order_and_replies_match_them() {
    let mut conn = Connection::default();
    let mut out = WriteBuf::new();
    let a = conn.send(&cmd::Stats, &mut out).unwrap();
    let b = conn.send(&cmd::Delete::new(1), &mut out).unwrap();
    assert!(a < b);
    assert_eq!((a.get(), b.get()), (0, 1));
    assert_eq!(conn.next_token(), Some(a));
    let mut src = BytesMut::from(&b"OK 4\r\n---\n\r\nDELETED\r\n"[..]);
    assert_eq!(conn.poll_response(&mut src).unwrap().unwrap().0, a);
    assert_eq!(conn.next_token(), Some(b));
    assert_eq!(conn.poll_response(&mut src).unwrap().unwrap().0, b);
    assert_eq!(conn.next_token(), None);
    let c = conn.send(&cmd::Delete::new(1), &mut out).unwrap();
    assert_eq!(c.get(), 2);
}

/// `bytes_in_flight` is what was written for the commands still
/// unanswered: each reply takes its own command's length off, whatever
/// the reply, and a broken connection or a completed `quit` leaves none.
#[test]
fn bytes_in_flight_follow_the_commands_answered() {
    let mut conn = Connection::default();
    let mut out = WriteBuf::new();
    let mut lengths = Vec::new();
    for body in [vec![b'x'; 60_000], vec![b'y'; 5], vec![b'z'; 50_000]] {
        let before = out.remaining();
        conn.send(
            &cmd::Put::new(body, PutOptions::default()).unwrap(),
            &mut out,
        )
        .unwrap();
        lengths.push(out.remaining() - before);
    }
    let before = out.remaining();
    conn.send(&cmd::Delete::new(9), &mut out).unwrap();
    lengths.push(out.remaining() - before);
    assert_eq!(out.remaining(), lengths.iter().sum::<usize>());
    assert_eq!(conn.bytes_in_flight(), out.remaining());

    let mut left: usize = lengths.iter().sum();
    for (reply, length) in [&b"INSERTED 1\r\n"[..], b"JOB_TOO_BIG\r\n", b"BURIED 3\r\n"]
        .into_iter()
        .zip(&lengths)
    {
        feed(&mut conn, reply);
        left -= length;
        assert_eq!(conn.bytes_in_flight(), left);
    }
    feed(&mut conn, b"NOT_FOUND\r\n");
    assert_eq!(conn.bytes_in_flight(), 0);

    conn.send(&cmd::Delete::new(1), &mut out).unwrap();
    conn.send(&cmd::Quit, &mut out).unwrap();
    feed(&mut conn, b"DELETED\r\n");
    assert!(conn.bytes_in_flight() > 0, "quit is still to complete");
    let mut nothing = BytesMut::new();
    let (_, closing) = conn.poll_response(&mut nothing).unwrap().unwrap();
    assert_eq!(closing, Response::Closing);
    assert_eq!(conn.bytes_in_flight(), 0);

    let mut broken = Connection::default();
    for id in 1..=3 {
        broken.send(&cmd::Delete::new(id), &mut out).unwrap();
    }
    let mut garbage = BytesMut::from(&b"INSERTED 4\r\n"[..]);
    assert!(broken.poll_response(&mut garbage).is_err());
    assert_eq!(
        broken.bytes_in_flight(),
        0,
        "a broken connection answers nothing"
    );
}

// ---------------------------------------------------------------------------
// Session tracking
// ---------------------------------------------------------------------------

fn session(conn: &Connection) -> (String, Vec<String>) {
    session_of(conn)
}

fn s(using: &str, watching: &[&str]) -> (String, Vec<String>) {
    (
        using.to_owned(),
        watching.iter().map(|w| (*w).to_owned()).collect(),
    )
}

/// Feeds one reply and returns it.
fn feed(conn: &mut Connection, reply: &[u8]) -> Response {
    let mut src = BytesMut::from(reply);
    let (_, r) = conn.poll_response(&mut src).unwrap().unwrap();
    assert!(src.is_empty());
    r
}

#[test]
fn session_changes_only_when_the_server_confirms() {
    let mut conn = Connection::default();
    let mut out = WriteBuf::new();
    assert!(conn.session().is_default());
    assert_eq!(session(&conn), s("default", &["default"]));

    conn.send(&cmd::Use::new("a").unwrap(), &mut out).unwrap();
    conn.send(&cmd::Watch::new("b").unwrap(), &mut out).unwrap();
    conn.send(&cmd::Ignore::new("default").unwrap(), &mut out)
        .unwrap();
    conn.send(&cmd::Ignore::new("b").unwrap(), &mut out)
        .unwrap();
    assert_eq!(
        session(&conn),
        s("default", &["default"]),
        "nothing changes on send"
    );
    assert!(conn.session().is_default());

    feed(&mut conn, b"USING a\r\n");
    assert_eq!(session(&conn), s("a", &["default"]));
    feed(&mut conn, b"WATCHING 2\r\n");
    assert_eq!(session(&conn), s("a", &["default", "b"]));
    feed(&mut conn, b"WATCHING 1\r\n");
    assert_eq!(session(&conn), s("a", &["b"]));
    assert!(!conn.session().is_default());
    // The server refuses to ignore the last tube: the list stays.
    let r = feed(&mut conn, b"NOT_IGNORED\r\n");
    assert!(matches!(
        <cmd::Ignore as beanstalk_proto::Request>::from_response(r),
        Err(Error::NotIgnored)
    ));
    assert_eq!(session(&conn), s("a", &["b"]));

    // Server errors leave the session alone.
    conn.send(&cmd::Use::new("c").unwrap(), &mut out).unwrap();
    feed(&mut conn, b"OUT_OF_MEMORY\r\n");
    conn.send(&cmd::Watch::new("c").unwrap(), &mut out).unwrap();
    feed(&mut conn, b"INTERNAL_ERROR\r\n");
    conn.send(&cmd::Ignore::new("b").unwrap(), &mut out)
        .unwrap();
    feed(&mut conn, b"BAD_FORMAT\r\n");
    assert_eq!(session(&conn), s("a", &["b"]));

    // Watching twice does not duplicate; ignoring an unwatched tube is a no-op.
    conn.send(&cmd::Watch::new("b").unwrap(), &mut out).unwrap();
    feed(&mut conn, b"WATCHING 1\r\n");
    conn.send(&cmd::Ignore::new("zzz").unwrap(), &mut out)
        .unwrap();
    feed(&mut conn, b"WATCHING 1\r\n");
    assert_eq!(session(&conn), s("a", &["b"]));
    // Watch order is kept.
    for t in ["c", "d", "default"] {
        conn.send(&cmd::Watch::new(t).unwrap(), &mut out).unwrap();
    }
    for n in 2..=4 {
        feed(&mut conn, format!("WATCHING {n}\r\n").as_bytes());
    }
    assert_eq!(session(&conn), s("a", &["b", "c", "d", "default"]));
    // list-tube-used does not change the session, even if it names another
    // tube.
    conn.send(&cmd::ListTubeUsed, &mut out).unwrap();
    feed(&mut conn, b"USING other\r\n");
    assert_eq!(session(&conn).0, "a");
    // use back to default.
    conn.send(&cmd::Use::new("default").unwrap(), &mut out)
        .unwrap();
    feed(&mut conn, b"USING default\r\n");
    assert_eq!(session(&conn), s("default", &["b", "c", "d", "default"]));

    // A mismatching USING breaks the connection and changes nothing; the
    // last confirmed session stays readable for a reconnect.
    conn.send(&cmd::Use::new("x").unwrap(), &mut out).unwrap();
    let err = conn
        .poll_response(&mut BytesMut::from(&b"USING y\r\n"[..]))
        .unwrap_err();
    assert_eq!(err, ProtocolError::TubeMismatch);
    assert_eq!(conn.state(), State::Broken(err));
    assert_eq!(session(&conn), s("default", &["b", "c", "d", "default"]));
}

#[test]
fn a_pipelined_session_applies_in_reply_order() {
    let mut conn = Connection::default();
    let mut out = WriteBuf::new();
    conn.send(&cmd::Use::new("one").unwrap(), &mut out).unwrap();
    conn.send(&cmd::Use::new("two").unwrap(), &mut out).unwrap();
    conn.send(&cmd::Watch::new("w").unwrap(), &mut out).unwrap();
    conn.send(&cmd::Ignore::new("w").unwrap(), &mut out)
        .unwrap();
    let mut src = BytesMut::from(&b"USING one\r\nUSING two\r\nWATCHING 2\r\nWATCHING 1\r\n"[..]);
    let mut seen = Vec::new();
    while conn.poll_response(&mut src).unwrap().is_some() {
        seen.push(session(&conn));
    }
    assert_eq!(
        seen,
        [
            s("one", &["default"]),
            s("two", &["default"]),
            s("two", &["default", "w"]),
            s("two", &["default"]),
        ]
    );
}

/// Runs `restore_session` for `target` on a new connection, answers every
/// command as a server would, and returns what was sent.
fn restore(target: &Session) -> (usize, Vec<u8>, Connection) {
    let mut conn = Connection::default();
    let mut out = WriteBuf::new();
    let n = conn.restore_session(target, &mut out).unwrap();
    assert_eq!(conn.in_flight(), n);
    let wire = drain(&mut out);
    // Answer like a server: USING <t>, WATCHING <count>.
    let mut watched = 1;
    let mut replies = Vec::new();
    for line in wire.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let line = std::str::from_utf8(line).unwrap().trim_end_matches('\r');
        let (word, tube) = line.split_once(' ').unwrap();
        match word {
            "use" => replies.extend_from_slice(format!("USING {tube}\r\n").as_bytes()),
            "watch" => {
                watched += 1;
                replies.extend_from_slice(format!("WATCHING {watched}\r\n").as_bytes());
            }
            "ignore" => {
                watched -= 1;
                replies.extend_from_slice(format!("WATCHING {watched}\r\n").as_bytes());
            }
            other => panic!("restore sent {other}"),
        }
    }
    let mut src = BytesMut::from(&replies[..]);
    for _ in 0..n {
        let (_, r) = conn.poll_response(&mut src).unwrap().unwrap();
        check_restored(r).unwrap();
    }
    assert!(src.is_empty());
    (n, wire, conn)
}

#[test]
fn restoring_a_session_on_a_new_connection() {
    // Build a session on one connection, the way the server confirms it.
    let mut old = Connection::default();
    let mut out = WriteBuf::new();
    old.send(&cmd::Use::new("a").unwrap(), &mut out).unwrap();
    old.send(&cmd::Watch::new("b").unwrap(), &mut out).unwrap();
    old.send(&cmd::Watch::new("c").unwrap(), &mut out).unwrap();
    old.send(&cmd::Ignore::new("default").unwrap(), &mut out)
        .unwrap();
    for r in [
        &b"USING a\r\n"[..],
        b"WATCHING 2\r\n",
        b"WATCHING 3\r\n",
        b"WATCHING 2\r\n",
    ] {
        feed(&mut old, r);
    }
    old.abandon();
    let target = old.session().clone();
    assert_eq!(session(&old), s("a", &["b", "c"]));

    let (n, wire, new) = restore(&target);
    assert_eq!(n, 3 + 1);
    assert_eq!(
        wire, b"use a\r\nwatch b\r\nwatch c\r\nignore default\r\n",
        "watch before ignoring default, so the list is never empty"
    );
    assert_eq!(new.session(), &target);

    // The default session needs nothing.
    let mut conn = Connection::default();
    let mut out = WriteBuf::new();
    assert_eq!(conn.restore_session(&Session::default(), &mut out), Ok(0));
    assert!(out.is_empty());
    assert_eq!(conn.in_flight(), 0);

    // Only watches.
    let mut old = Connection::default();
    old.send(&cmd::Watch::new("x").unwrap(), &mut WriteBuf::new())
        .unwrap();
    feed(&mut old, b"WATCHING 2\r\n");
    let (n, wire, new) = restore(old.session());
    assert_eq!((n, &wire[..]), (1, &b"watch x\r\n"[..]));
    assert_eq!(new.session(), old.session());

    // Only use.
    let mut old = Connection::default();
    old.send(&cmd::Use::new("u").unwrap(), &mut WriteBuf::new())
        .unwrap();
    feed(&mut old, b"USING u\r\n");
    let (n, wire, _) = restore(old.session());
    assert_eq!((n, &wire[..]), (1, &b"use u\r\n"[..]));

    // A refused restore step is reported.
    assert!(matches!(
        check_restored(Response::Word(W::NotIgnored)),
        Err(Error::NotIgnored)
    ));
    assert!(matches!(
        check_restored(Response::Word(W::OutOfMemory)),
        Err(Error::Server(ServerError::OutOfMemory))
    ));

    // Restoring on a closed connection fails without writing.
    let mut conn = Connection::default();
    conn.send(&cmd::Quit, &mut WriteBuf::new()).unwrap();
    let mut out = WriteBuf::new();
    assert_eq!(
        conn.restore_session(&target, &mut out),
        Err(CommandError::Closed)
    );
    assert!(out.is_empty());
}

// ---------------------------------------------------------------------------
// Reply timeouts
// ---------------------------------------------------------------------------

/// Whether a connection with `delete` and then `request` in flight has a
/// command that may hold its replies back for long.
fn blocking_after<R: beanstalk_proto::Request>(request: &R) -> bool {
    let mut conn = Connection::default();
    let mut out = WriteBuf::new();
    conn.send(&cmd::Delete::new(1), &mut out).unwrap();
    conn.send(request, &mut out).unwrap();
    conn.has_blocking_in_flight()
}

#[test]
fn next_reply_timeout_follows_the_head_command() {
    let mut conn = Connection::default();
    let mut out = WriteBuf::new();
    assert_eq!(conn.next_reply_timeout(), None);
    conn.send(&cmd::Delete::new(1), &mut out).unwrap();
    conn.send(&cmd::Reserve, &mut out).unwrap();
    conn.send(&cmd::ReserveWithTimeout::new(5).unwrap(), &mut out)
        .unwrap();
    conn.send(&cmd::ReserveWithTimeout::new(0).unwrap(), &mut out)
        .unwrap();
    conn.send(
        &cmd::ReserveWithTimeout::new(i32::MAX as u32).unwrap(),
        &mut out,
    )
    .unwrap();
    conn.send(&cmd::ReserveJob::new(1), &mut out).unwrap();
    conn.send(
        &cmd::Put::new("x", PutOptions::default()).unwrap(),
        &mut out,
    )
    .unwrap();

    let expected = [
        ReplyTimeout::Default,
        ReplyTimeout::Indefinite,
        ReplyTimeout::ServerWait(Duration::from_secs(5)),
        ReplyTimeout::ServerWait(Duration::ZERO),
        ReplyTimeout::ServerWait(Duration::from_secs(i32::MAX as u64)),
        ReplyTimeout::Default,
        ReplyTimeout::Default,
    ];
    let replies: [&[u8]; 7] = [
        b"DELETED\r\n",
        b"RESERVED 1 1\r\nx\r\n",
        b"TIMED_OUT\r\n",
        b"TIMED_OUT\r\n",
        b"DEADLINE_SOON\r\n",
        b"NOT_FOUND\r\n",
        b"INSERTED 2\r\n",
    ];
    for (timeout, reply) in expected.iter().zip(replies) {
        assert_eq!(conn.next_reply_timeout(), Some(*timeout));
        // Still the head's timeout while its reply is only partly there.
        let mut src = BytesMut::from(&reply[..reply.len() - 1]);
        assert_eq!(conn.poll_response(&mut src), Ok(None));
        assert_eq!(conn.next_reply_timeout(), Some(*timeout));
        src.extend_from_slice(&reply[reply.len() - 1..]);
        assert!(conn.poll_response(&mut src).unwrap().is_some());
    }
    assert_eq!(conn.next_reply_timeout(), None);

    // Whether anything in flight may hold the connection for long.
    assert!(blocking_after(&cmd::Reserve));
    assert!(blocking_after(&cmd::ReserveWithTimeout::new(1).unwrap()));
    assert!(!blocking_after(&cmd::ReserveWithTimeout::new(0).unwrap()));
    assert!(!blocking_after(&cmd::ReserveJob::new(1)));
    assert!(!blocking_after(&cmd::Stats));
    assert!(!Connection::default().has_blocking_in_flight());

    // Resolving against a driver's default.
    let d = Duration::from_secs(5);
    assert_eq!(ReplyTimeout::Default.resolve(d), Some(d));
    assert_eq!(ReplyTimeout::Indefinite.resolve(d), None);
    assert_eq!(
        ReplyTimeout::ServerWait(Duration::from_secs(10)).resolve(d),
        Some(Duration::from_secs(15))
    );
    assert_eq!(
        ReplyTimeout::ServerWait(Duration::MAX).resolve(d),
        Some(Duration::MAX),
        "saturates"
    );
    assert_eq!(ReplyTimeout::Indefinite.resolve_explicit(d), d);
    assert_eq!(
        ReplyTimeout::ServerWait(Duration::from_secs(1)).resolve_explicit(d),
        Duration::from_secs(6)
    );
}

#[test]
fn server_errors_in_a_pipeline_are_typed_per_command() {
    // The same OUT_OF_MEMORY reply types as a ServerError for every command.
    let mut conn = Connection::default();
    let mut out = WriteBuf::new();
    let specs = CmdSpec::samples();
    let mut wire = Vec::new();
    for spec in &specs {
        (spec.typed().send)(&mut conn, &mut out).unwrap();
        wire.extend_from_slice(b"OUT_OF_MEMORY\r\n");
    }
    let mut src = BytesMut::from(&wire[..]);
    for spec in &specs {
        let (_, r) = conn.poll_response(&mut src).unwrap().unwrap();
        assert_eq!(
            (spec.typed().decode)(r),
            Err(Fail::Server(ServerError::OutOfMemory)),
            "{}",
            spec.name()
        );
    }
    assert!(conn.is_open());
}

// ---------------------------------------------------------------------------
// Batch bookkeeping
// ---------------------------------------------------------------------------

#[test]
fn batch_results_come_back_in_request_order() {
    use beanstalk_proto::batch::Batch;
    let mut conn = Connection::default();
    let mut out = WriteBuf::new();
    // A command from an earlier, abandoned call is still in flight.
    let stray = conn.send(&cmd::Touch::new(9), &mut out).unwrap();
    let mut batch = Batch::with_capacity(3);
    for id in 1..=3 {
        batch.send(&mut conn, &cmd::Delete::new(id), &mut out);
    }
    assert!(batch.is_waiting() && batch.can_send());
    let mut src = BytesMut::from(&b"TOUCHED\r\nDELETED\r\nNOT_FOUND\r\nINTERNAL_ERROR\r\n"[..]);
    let mut tokens = Vec::new();
    while let Some((token, reply)) = conn.poll_response(&mut src).unwrap() {
        tokens.push(token);
        batch.answer(token, reply);
    }
    assert_eq!(tokens[0], stray, "the stray reply is ignored by the batch");
    assert!(!batch.is_waiting());
    let results = batch.finish();
    assert_eq!(results.len(), 3);
    assert!(results[0].is_ok());
    assert!(matches!(results[1], Err(Error::NotFound)));
    assert!(matches!(
        results[2],
        Err(Error::Server(ServerError::InternalError))
    ));
}

#[test]
fn batch_bounds_unanswered_bytes_and_reports_failures() {
    use beanstalk_proto::batch::{Batch, MAX_UNANSWERED_SHORT_REPLY_BYTES};
    assert_eq!(MAX_UNANSWERED_SHORT_REPLY_BYTES, 256 * 1024); // puts have short replies
    let config = Config::default().max_job_size(1 << 20);
    let mut conn = Connection::new(config);
    let mut out = WriteBuf::new();
    let body = vec![b'b'; 60_000];
    let too_big = vec![b'b'; (1 << 20) + 1];
    let mut batch = Batch::with_capacity(4);
    batch.send(
        &mut conn,
        &cmd::Put::new(&body, PutOptions::default()).unwrap(),
        &mut out,
    );
    batch.send(
        &mut conn,
        &cmd::Put::new(&body, PutOptions::default()).unwrap(),
        &mut out,
    );
    assert!(batch.can_send(), "about 120,000 bytes unanswered");
    // Refused locally: its slot gets the error, nothing is sent.
    let before = out.remaining();
    batch.send(
        &mut conn,
        &cmd::Put::new(&too_big, PutOptions::default()).unwrap(),
        &mut out,
    );
    assert_eq!(out.remaining(), before);
    batch.send(
        &mut conn,
        &cmd::Put::new(&body, PutOptions::default()).unwrap(),
        &mut out,
    );
    assert!(batch.can_send(), "about 180,000 bytes unanswered");
    batch.send(
        &mut conn,
        &cmd::Put::new(&body, PutOptions::default()).unwrap(),
        &mut out,
    );
    batch.send(
        &mut conn,
        &cmd::Put::new(&body, PutOptions::default()).unwrap(),
        &mut out,
    );
    assert!(
        !batch.can_send(),
        "about 300,000 bytes unanswered: past the 256 KiB cap"
    );
    let mut src = BytesMut::from(&b"INSERTED 1\r\nINSERTED 2\r\n"[..]);
    let (token, reply) = conn.poll_response(&mut src).unwrap().unwrap();
    batch.answer(token, reply);
    assert!(
        !batch.can_send(),
        "about 240,000 bytes unanswered: one more put would pass the cap"
    );
    let (token, reply) = conn.poll_response(&mut src).unwrap().unwrap();
    batch.answer(token, reply);
    assert!(batch.can_send(), "answers free their bytes");
    // The connection breaks: the oldest waiting item gets the error, the
    // rest the recorded cause.
    let err = conn
        .poll_response(&mut BytesMut::from(&b"HELLO\r\n"[..]))
        .unwrap_err();
    batch.fail(&conn, Error::Protocol(err));
    assert!(!batch.is_waiting());
    let results = batch.finish();
    assert_eq!(results.len(), 6);
    assert!(matches!(&results[0], Ok(r) if r.id == 1 && !r.buried));
    assert!(matches!(&results[1], Ok(r) if r.id == 2 && !r.buried));
    assert!(matches!(
        results[2],
        Err(Error::Command(CommandError::JobTooBig { .. }))
    ));
    for result in &results[3..] {
        assert!(matches!(
            result,
            Err(Error::Protocol(ProtocolError::UnknownReply))
        ));
    }

    // Unanswered items left at finish are reported abandoned.
    let mut conn = Connection::default();
    let mut batch = Batch::with_capacity(1);
    batch.send(&mut conn, &cmd::Delete::new(1), &mut WriteBuf::new());
    let results = batch.finish();
    assert!(matches!(
        results[0],
        Err(Error::Protocol(ProtocolError::Abandoned))
    ));
}

/// A huge body takes the allocation it was read into with it: the buffer
/// keeps only what follows, in a block of its own, so a connection does
/// not hold a huge buffer for its life once the caller drops the body.
#[test]
fn a_huge_body_leaves_the_buffer_a_block_of_its_own() {
    const HUGE: usize = 300_000;
    let mut conn = Connection::new(Config::default().max_job_size(1 << 20));
    let mut out = WriteBuf::new();
    let first = conn.send(&cmd::Peek::new(1), &mut out).unwrap();
    let second = conn.send(&cmd::Peek::new(2), &mut out).unwrap();
    let mut src = BytesMut::from(&format!("FOUND 1 {HUGE}\r\n")[..]);
    src.resize(src.len() + HUGE, b'x');
    src.extend_from_slice(b"\r\nFOUND 2 1\r\ny\r\n");
    let (token, reply) = conn.poll_response(&mut src).unwrap().unwrap();
    let Response::Job(job) = reply else {
        panic!("not a job")
    };
    assert_eq!((token, job.id, job.body.len()), (first, 1, HUGE));
    assert!(
        src.capacity() < HUGE,
        "the buffer still spans the body's block: {} bytes",
        src.capacity()
    );
    drop(job);
    let (token, reply) = conn.poll_response(&mut src).unwrap().unwrap();
    let Response::Job(job) = reply else {
        panic!("not a job")
    };
    assert_eq!((token, job.id, &job.body[..]), (second, 2, &b"y"[..]));
}

/// As above when one read (up to 256 KiB in the blocking and tokio
/// clients) brought more than 64 KiB after the huge body: once the
/// caller dropped the bodies, the buffer must not take the huge block back.
#[test]
fn a_huge_body_followed_by_a_full_read_leaves_no_huge_buffer() {
    const HUGE: usize = 300_000;
    const NEXT: usize = 100_000;
    let mut conn = Connection::new(Config::default().max_job_size(1 << 20));
    let mut out = WriteBuf::new();
    let first = conn.send(&cmd::Peek::new(1), &mut out).unwrap();
    let second = conn.send(&cmd::Peek::new(2), &mut out).unwrap();
    // What the reads brought, in a buffer of just that size.
    let mut wire = format!("FOUND 1 {HUGE}\r\n").into_bytes();
    wire.resize(wire.len() + HUGE, b'x');
    wire.extend_from_slice(format!("\r\nFOUND 2 {NEXT}\r\n").as_bytes());
    wire.resize(wire.len() + NEXT, b'y');
    wire.extend_from_slice(b"\r\n");
    let mut src = BytesMut::from(&wire[..]);
    let (token, reply) = conn.poll_response(&mut src).unwrap().unwrap();
    let Response::Job(job) = reply else {
        panic!("not a job")
    };
    assert_eq!((token, job.id, job.body.len()), (first, 1, HUGE));
    drop(job);
    let (token, reply) = conn.poll_response(&mut src).unwrap().unwrap();
    let Response::Job(job) = reply else {
        panic!("not a job")
    };
    assert_eq!((token, job.id, job.body.len()), (second, 2, NEXT));
    drop(job);
    // The next read's reserve, as the adapters make it.
    src.reserve(4096);
    assert!(
        src.capacity() < HUGE,
        "the buffer took the huge body's block back: {} bytes",
        src.capacity()
    );
}
