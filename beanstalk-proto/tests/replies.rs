//! Every reply of every command, table-driven: the real replies of
//! beanstalkd 1.12 and 1.13 (fixtures), every reply the protocol defines for
//! each command, and every reply that does not fit. Each case goes through a
//! `Connection` and `Request::from_response`, and is fed whole, one byte at a
//! time, and split in two at every index, which must all give the same
//! result and leave the connection usable or broken as expected.

mod common;

use beanstalk_proto::frame::ReplyWord as W;
use beanstalk_proto::stats::JobState;
use beanstalk_proto::{
    Config, ProtocolError, PutOptions, ReleaseOutcome, ServerError, WriteBuf, cmd,
};
use bytes::BytesMut;
use common::{
    CmdSpec, Fail, Outcome, ReplySpec, Step, V, VERSIONS, check_every_split, fixture, fixture_dir,
    run_pipeline, session_of, typed,
};

// ---------------------------------------------------------------------------
// Expectation shorthands
// ---------------------------------------------------------------------------

fn broken(e: ProtocolError) -> Outcome {
    Err(Fail::Broken(e))
}

fn unexpected(command: &'static str, reply: W) -> Outcome {
    broken(ProtocolError::UnexpectedReply { command, reply })
}

fn desync(command: &'static str, reply: W) -> Outcome {
    broken(ProtocolError::Desync { command, reply })
}

fn server(e: ServerError) -> Outcome {
    Err(Fail::Server(e))
}

fn job(id: u64, body: &[u8]) -> Outcome {
    Ok(V::Job {
        id,
        body: body.to_vec(),
    })
}

fn receipt(id: u64, buried: bool) -> Outcome {
    Ok(V::Receipt { id, buried })
}

/// `OK <len>` + body + CRLF, with the length computed.
fn ok(body: &[u8]) -> Vec<u8> {
    ReplySpec::Ok(body.to_vec()).bytes()
}

fn tubes(names: &[&str]) -> Outcome {
    Ok(V::TubeList(names.iter().map(|s| (*s).to_owned()).collect()))
}

// ---------------------------------------------------------------------------
// Fixtures: real server replies
// ---------------------------------------------------------------------------

/// One row of MANIFEST.tsv.
struct Row {
    file: String,
    line: String,
    body: Vec<u8>,
}

fn manifest() -> Vec<Row> {
    let text = std::fs::read_to_string(fixture_dir().join("MANIFEST.tsv")).unwrap();
    text.lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let mut cols = l.split('\t');
            let file = cols.next().unwrap().to_owned();
            let line = cols.next().unwrap().to_owned();
            let body = cols
                .next()
                .unwrap_or("")
                .replace("\\x00", "\0")
                .into_bytes();
            Row { file, line, body }
        })
        .collect()
}

/// The typed command behind a manifest line. Two lines cannot be sent by a
/// typed client (`bogus`, `delete x`); their replies are paired with a
/// command that can legitimately receive them.
fn manifest_command(row: &Row) -> CmdSpec {
    let words: Vec<&str> = row.line.split(' ').collect();
    let n = |i: usize| words[i].parse::<u64>().unwrap();
    let n32 = |i: usize| words[i].parse::<u32>().unwrap();
    match words[0] {
        "use" => CmdSpec::Use(words[1].into()),
        "put" => {
            // `put 1 0 1 2` + `abc` (expected-crlf) announces a wrong size on
            // purpose; the typed client always announces the true size.
            if row.file != "expected-crlf.bin" {
                assert_eq!(n(4) as usize, row.body.len(), "{}", row.line);
            }
            CmdSpec::Put {
                body: row.body.clone(),
                pri: n32(1),
                delay: n32(2),
                ttr: n32(3),
            }
        }
        "watch" => CmdSpec::Watch(words[1].into()),
        "ignore" => CmdSpec::Ignore(words[1].into()),
        "reserve-with-timeout" => CmdSpec::ReserveWithTimeout(n32(1)),
        "stats-job" => CmdSpec::StatsJob(n(1)),
        "stats-tube" => CmdSpec::StatsTube(words[1].into()),
        "stats" => CmdSpec::Stats,
        "list-tubes" => CmdSpec::ListTubes,
        "list-tube-used" => CmdSpec::ListTubeUsed,
        "list-tubes-watched" => CmdSpec::ListTubesWatched,
        "peek" => CmdSpec::Peek(n(1)),
        "peek-delayed" => CmdSpec::PeekDelayed,
        "peek-buried" => CmdSpec::PeekBuried,
        "peek-ready" => CmdSpec::PeekReady,
        "bury" => CmdSpec::Bury(n(1), n32(2)),
        "kick" => CmdSpec::Kick(n32(1)),
        "kick-job" => CmdSpec::KickJob(n(1)),
        "reserve-job" => CmdSpec::ReserveJob(n(1)),
        "touch" => CmdSpec::Touch(n(1)),
        "release" => CmdSpec::Release(n(1), n32(2), n32(3)),
        "delete" if words[1] == "x" => CmdSpec::Delete(1),
        "delete" => CmdSpec::Delete(n(1)),
        "pause-tube" => CmdSpec::PauseTube(words[1].into(), n32(2)),
        // UNKNOWN_COMMAND is what a pre-1.12 server answers to reserve-job.
        "bogus" => CmdSpec::ReserveJob(1),
        other => panic!("manifest command {other:?} not mapped"),
    }
}

/// The expected result of each fixture, written from the captured bytes
/// and the manifest's sequence notes.
fn fixture_expectation(version: &str, file: &str) -> Outcome {
    let (version_string, pid) = match version {
        "1.12" => ("1.12", 18226),
        _ => ("unknown", 18268),
    };
    match file {
        "use.bin" | "list-tube-used.bin" => Ok(V::Tube("capture-tube".into())),
        "put.bin" => receipt(1, false),
        "put2.bin" => receipt(2, false),
        "put-delayed.bin" => receipt(3, false),
        "watch.bin" => Ok(V::Count(2)),
        "ignore.bin" => Ok(V::Count(1)),
        "not-ignored.bin" => Err(Fail::NotIgnored),
        "reserve-with-timeout.bin" | "peek-buried.bin" => job(2, b"a\0b"),
        "stats-job.bin" => Ok(V::JobStats {
            id: 2,
            tube: "capture-tube".into(),
            state: JobState::Reserved,
            pri: 5,
        }),
        "stats-tube.bin" => Ok(V::TubeStats {
            name: "capture-tube".into(),
            total_jobs: 3,
            ready: 1,
        }),
        "stats.bin" => Ok(V::ServerStats {
            version: version_string.into(),
            total_jobs: 3,
            pid,
        }),
        "list-tubes.bin" => tubes(&["default", "capture-tube"]),
        "list-tubes-watched.bin" => tubes(&["capture-tube"]),
        "peek.bin" | "reserve-job.bin" => job(1, b"hello"),
        "peek-not-found.bin" => Ok(V::NoJob),
        "peek-delayed.bin" => job(3, b"delayed"),
        "bury.bin" | "kick-job.bin" | "touch.bin" | "delete.bin" | "pause-tube.bin" => Ok(V::Unit),
        "kick.bin" => Ok(V::Count(1)),
        "release.bin" => Ok(V::Release(ReleaseOutcome::Released)),
        "delete-not-found.bin" | "stats-tube-not-found.bin" => Err(Fail::NotFound),
        "timed-out.bin" => Err(Fail::TimedOut),
        "unknown-command.bin" => server(ServerError::UnknownCommand),
        "bad-format.bin" => server(ServerError::BadFormat),
        "expected-crlf.bin" => desync("put", W::ExpectedCrlf),
        other => panic!("no expectation for fixture {other}"),
    }
}

fn fixture_steps(version: &str) -> Vec<Step> {
    manifest()
        .iter()
        .map(|row| {
            let spec = manifest_command(row);
            Step::new(
                format!("{version}/{} ({})", row.file, row.line),
                spec.typed(),
                &fixture(version, &row.file),
                fixture_expectation(version, &row.file),
            )
        })
        .collect()
}

#[test]
fn every_fixture_file_is_in_the_manifest_and_vice_versa() {
    let listed: Vec<String> = manifest().into_iter().map(|r| r.file).collect();
    assert_eq!(listed.len(), 32);
    for version in VERSIONS {
        let mut on_disk: Vec<String> = std::fs::read_dir(fixture_dir().join(version))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        on_disk.sort();
        let mut expected = listed.clone();
        expected.sort();
        assert_eq!(on_disk, expected, "{version}");
    }
}

#[test]
fn every_fixture_decodes_whole_bytewise_and_split() {
    for version in VERSIONS {
        let steps = fixture_steps(version);
        assert_eq!(steps.len(), 32);
        for step in &steps {
            check_every_split(step);
        }
    }
}

#[test]
fn fixtures_differ_only_in_stats() {
    // A cheap guard that the two captures are what the README says: only the
    // stats bodies differ between the versions.
    for row in manifest() {
        let a = fixture("1.12", &row.file);
        let b = fixture("1.13plus", &row.file);
        let differs = a != b;
        let is_stats = row.file.starts_with("stats") && row.file != "stats-tube-not-found.bin";
        assert_eq!(differs, is_stats, "{}", row.file);
    }
}

#[test]
fn fixtures_replayed_as_one_pipelined_session() {
    for version in VERSIONS {
        let steps = fixture_steps(version);
        let expected: Vec<Outcome> = steps.iter().map(|s| s.expect.clone()).collect();
        for sizes in [&[usize::MAX][..], &[1], &[3, 1, 7, 2, 64], &[13, 5]] {
            let (got, _) = run_pipeline(&steps, Config::default(), sizes);
            assert_eq!(got, expected, "{version} chunked {sizes:?}");
        }
    }
}

#[test]
fn fixture_session_tracks_use_watch_ignore() {
    // use/watch/ignore of the capture, up to (not including) the final
    // desync, on one connection: the session must end as the server had it.
    for version in VERSIONS {
        let steps = fixture_steps(version);
        let mut conn = beanstalk_proto::Connection::default();
        let mut out = WriteBuf::new();
        let mut src = BytesMut::new();
        for step in &steps[..steps.len() - 1] {
            (step.typed.send)(&mut conn, &mut out).unwrap();
            src.extend_from_slice(&step.reply);
        }
        while let Some((_, _)) = conn.poll_response(&mut src).unwrap() {}
        assert!(src.is_empty());
        assert_eq!(
            session_of(&conn),
            ("capture-tube".to_owned(), vec!["capture-tube".to_owned()]),
            "{version}"
        );
    }
}

#[test]
fn bad_format_and_unknown_command_fixtures_after_put_break_the_connection() {
    let put = CmdSpec::Put {
        body: b"hello".to_vec(),
        pri: 1,
        delay: 0,
        ttr: 1,
    };
    for version in VERSIONS {
        for (file, word) in [
            ("bad-format.bin", W::BadFormat),
            ("unknown-command.bin", W::UnknownCommand),
            ("expected-crlf.bin", W::ExpectedCrlf),
        ] {
            check_every_split(&Step::new(
                format!("{version}/{file} after put"),
                put.typed(),
                &fixture(version, file),
                desync("put", word),
            ));
        }
    }
}

// ---------------------------------------------------------------------------
// The protocol's replies, command by command (hand-written expectations)
// ---------------------------------------------------------------------------

fn protocol_table() -> Vec<Step> {
    let put = || typed(cmd::Put::new(&b"hello"[..], PutOptions::default()).unwrap());
    let use_ = || typed(cmd::Use::new("emails").unwrap());
    let reserve = || typed(cmd::Reserve);
    let rwt = || typed(cmd::ReserveWithTimeout::new(5).unwrap());
    let reserve_job = || typed(cmd::ReserveJob::new(9));
    let delete = || typed(cmd::Delete::new(9));
    let release = || typed(cmd::Release::new(9, 1, 0));
    let bury = || typed(cmd::Bury::new(9, 1));
    let touch = || typed(cmd::Touch::new(9));
    let watch = || typed(cmd::Watch::new("emails").unwrap());
    let ignore = || typed(cmd::Ignore::new("default").unwrap());
    let kick = || typed(cmd::Kick::new(10));
    let kick_job = || typed(cmd::KickJob::new(9));
    let stats_job = || typed(cmd::StatsJob::new(9));
    let stats_tube = || typed(cmd::StatsTube::new("emails").unwrap());
    let pause = || typed(cmd::PauseTube::new("emails", 10).unwrap());
    let long_name = "n".repeat(200);
    let long_using = format!("USING {long_name}\r\n");
    assert_eq!(long_using.len(), 208);

    let s = |typed: common::Typed, reply: &[u8], expect: Outcome| {
        Step::new(
            format!("{} <- {}", typed.name, common::show(reply)),
            typed,
            reply,
            expect,
        )
    };
    let mut table = vec![
        // put
        s(put(), b"INSERTED 1\r\n", receipt(1, false)),
        s(
            put(),
            b"INSERTED 18446744073709551615\r\n",
            receipt(u64::MAX, false),
        ),
        s(put(), b"BURIED 9\r\n", receipt(9, true)),
        s(put(), b"JOB_TOO_BIG\r\n", Err(Fail::JobTooBig)),
        s(put(), b"DRAINING\r\n", Err(Fail::Draining)),
        s(put(), b"BAD_FORMAT\r\n", desync("put", W::BadFormat)),
        s(
            put(),
            b"UNKNOWN_COMMAND\r\n",
            desync("put", W::UnknownCommand),
        ),
        s(put(), b"EXPECTED_CRLF\r\n", desync("put", W::ExpectedCrlf)),
        s(put(), b"BURIED\r\n", unexpected("put", W::Buried)),
        s(put(), b"NOT_FOUND\r\n", unexpected("put", W::NotFound)),
        s(put(), b"DELETED\r\n", unexpected("put", W::Deleted)),
        // use
        s(use_(), b"USING emails\r\n", Ok(V::Tube("emails".into()))),
        s(
            use_(),
            b"USING default\r\n",
            broken(ProtocolError::TubeMismatch),
        ),
        s(
            use_(),
            b"USING emails2\r\n",
            broken(ProtocolError::TubeMismatch),
        ),
        s(
            use_(),
            b"USING email\r\n",
            broken(ProtocolError::TubeMismatch),
        ),
        s(
            use_(),
            long_using.as_bytes(),
            broken(ProtocolError::TubeMismatch),
        ),
        s(
            typed(cmd::Use::new(long_name.as_str()).unwrap()),
            long_using.as_bytes(),
            Ok(V::Tube(long_name.clone())),
        ),
        s(use_(), b"NOT_FOUND\r\n", unexpected("use", W::NotFound)),
        s(use_(), b"WATCHING 1\r\n", unexpected("use", W::Watching)),
        // reserve
        s(reserve(), b"RESERVED 5 5\r\nhello\r\n", job(5, b"hello")),
        s(reserve(), b"RESERVED 5 0\r\n\r\n", job(5, b"")),
        s(
            reserve(),
            b"RESERVED 5 6\r\na\r\n\0\r\n\r\n",
            job(5, b"a\r\n\0\r\n"),
        ),
        s(reserve(), b"RESERVED 5 2\r\n\r\n\r\n", job(5, b"\r\n")),
        s(reserve(), b"DEADLINE_SOON\r\n", Err(Fail::DeadlineSoon)),
        s(reserve(), b"TIMED_OUT\r\n", Err(Fail::TimedOut)),
        s(
            reserve(),
            b"FOUND 5 1\r\nx\r\n",
            unexpected("reserve", W::Found),
        ),
        s(
            reserve(),
            b"NOT_FOUND\r\n",
            unexpected("reserve", W::NotFound),
        ),
        // reserve-with-timeout
        s(rwt(), b"RESERVED 6 3\r\nabc\r\n", job(6, b"abc")),
        s(rwt(), b"DEADLINE_SOON\r\n", Err(Fail::DeadlineSoon)),
        s(rwt(), b"TIMED_OUT\r\n", Err(Fail::TimedOut)),
        s(
            rwt(),
            b"NOT_FOUND\r\n",
            unexpected("reserve-with-timeout", W::NotFound),
        ),
        // reserve-job
        s(reserve_job(), b"RESERVED 9 3\r\nabc\r\n", job(9, b"abc")),
        s(reserve_job(), b"NOT_FOUND\r\n", Err(Fail::NotFound)),
        s(
            reserve_job(),
            b"DEADLINE_SOON\r\n",
            unexpected("reserve-job", W::DeadlineSoon),
        ),
        s(
            reserve_job(),
            b"TIMED_OUT\r\n",
            unexpected("reserve-job", W::TimedOut),
        ),
        s(
            reserve_job(),
            b"FOUND 9 1\r\nx\r\n",
            unexpected("reserve-job", W::Found),
        ),
        // delete
        s(delete(), b"DELETED\r\n", Ok(V::Unit)),
        s(delete(), b"NOT_FOUND\r\n", Err(Fail::NotFound)),
        s(
            delete(),
            b"INSERTED 3\r\n",
            unexpected("delete", W::Inserted),
        ),
        s(delete(), b"BURIED\r\n", unexpected("delete", W::Buried)),
        s(delete(), b"RELEASED\r\n", unexpected("delete", W::Released)),
        // release
        s(
            release(),
            b"RELEASED\r\n",
            Ok(V::Release(ReleaseOutcome::Released)),
        ),
        s(
            release(),
            b"BURIED\r\n",
            Ok(V::Release(ReleaseOutcome::Buried)),
        ),
        s(release(), b"NOT_FOUND\r\n", Err(Fail::NotFound)),
        s(release(), b"BURIED 9\r\n", unexpected("release", W::Buried)),
        s(release(), b"DELETED\r\n", unexpected("release", W::Deleted)),
        // bury
        s(bury(), b"BURIED\r\n", Ok(V::Unit)),
        s(bury(), b"NOT_FOUND\r\n", Err(Fail::NotFound)),
        s(bury(), b"BURIED 9\r\n", unexpected("bury", W::Buried)),
        s(bury(), b"RELEASED\r\n", unexpected("bury", W::Released)),
        // touch
        s(touch(), b"TOUCHED\r\n", Ok(V::Unit)),
        s(touch(), b"NOT_FOUND\r\n", Err(Fail::NotFound)),
        s(touch(), b"DELETED\r\n", unexpected("touch", W::Deleted)),
        // watch
        s(watch(), b"WATCHING 2\r\n", Ok(V::Count(2))),
        s(
            watch(),
            b"WATCHING 18446744073709551615\r\n",
            Ok(V::Count(u64::MAX)),
        ),
        s(
            watch(),
            b"NOT_IGNORED\r\n",
            unexpected("watch", W::NotIgnored),
        ),
        s(watch(), b"USING emails\r\n", unexpected("watch", W::Using)),
        // ignore
        s(ignore(), b"WATCHING 1\r\n", Ok(V::Count(1))),
        s(ignore(), b"NOT_IGNORED\r\n", Err(Fail::NotIgnored)),
        s(
            ignore(),
            b"NOT_FOUND\r\n",
            unexpected("ignore", W::NotFound),
        ),
        // kick
        s(kick(), b"KICKED 3\r\n", Ok(V::Count(3))),
        s(kick(), b"KICKED 0\r\n", Ok(V::Count(0))),
        s(kick(), b"KICKED\r\n", unexpected("kick", W::Kicked)),
        s(kick(), b"NOT_FOUND\r\n", unexpected("kick", W::NotFound)),
        // kick-job
        s(kick_job(), b"KICKED\r\n", Ok(V::Unit)),
        s(kick_job(), b"NOT_FOUND\r\n", Err(Fail::NotFound)),
        s(
            kick_job(),
            b"KICKED 1\r\n",
            unexpected("kick-job", W::Kicked),
        ),
        // stats-job / stats-tube
        s(
            stats_job(),
            &ok(b"---\nid: 9\ntube: \"emails\"\nstate: buried\npri: 7\n"),
            Ok(V::JobStats {
                id: 9,
                tube: "emails".into(),
                state: JobState::Buried,
                pri: 7,
            }),
        ),
        s(stats_job(), b"NOT_FOUND\r\n", Err(Fail::NotFound)),
        s(
            stats_job(),
            b"FOUND 9 1\r\nx\r\n",
            unexpected("stats-job", W::Found),
        ),
        s(
            stats_tube(),
            &ok(b"---\nname: emails\ntotal-jobs: 12\ncurrent-jobs-ready: 4\n"),
            Ok(V::TubeStats {
                name: "emails".into(),
                total_jobs: 12,
                ready: 4,
            }),
        ),
        s(stats_tube(), b"NOT_FOUND\r\n", Err(Fail::NotFound)),
        // stats
        s(
            typed(cmd::Stats),
            &ok(b"---\nversion: \"1.13\"\ntotal-jobs: 5\npid: 1\n"),
            Ok(V::ServerStats {
                version: "1.13".into(),
                total_jobs: 5,
                pid: 1,
            }),
        ),
        s(
            typed(cmd::Stats),
            b"NOT_FOUND\r\n",
            unexpected("stats", W::NotFound),
        ),
        // tube lists
        s(
            typed(cmd::ListTubes),
            &ok(b"---\n- default\n- emails\n"),
            tubes(&["default", "emails"]),
        ),
        s(typed(cmd::ListTubes), &ok(b""), tubes(&[])),
        s(
            typed(cmd::ListTubes),
            b"USING x\r\n",
            unexpected("list-tubes", W::Using),
        ),
        s(
            typed(cmd::ListTubesWatched),
            &ok(b"---\n- default\n"),
            tubes(&["default"]),
        ),
        s(
            typed(cmd::ListTubeUsed),
            b"USING emails\r\n",
            Ok(V::Tube("emails".into())),
        ),
        s(
            typed(cmd::ListTubeUsed),
            long_using.as_bytes(),
            Ok(V::Tube(long_name.clone())),
        ),
        s(
            typed(cmd::ListTubeUsed),
            &ok(b"- "),
            unexpected("list-tube-used", W::Ok),
        ),
        // pause-tube
        s(pause(), b"PAUSED\r\n", Ok(V::Unit)),
        s(pause(), b"NOT_FOUND\r\n", Err(Fail::NotFound)),
        s(
            pause(),
            b"DELETED\r\n",
            unexpected("pause-tube", W::Deleted),
        ),
    ];
    // peeks: FOUND -> Some, NOT_FOUND -> None.
    let peeks = [
        typed(cmd::Peek::new(4)),
        typed(cmd::PeekReady),
        typed(cmd::PeekDelayed),
        typed(cmd::PeekBuried),
    ];
    for peek in peeks {
        let name = peek.name;
        table.push(s(peek.clone(), b"FOUND 4 3\r\nabc\r\n", job(4, b"abc")));
        table.push(s(peek.clone(), b"FOUND 4 0\r\n\r\n", job(4, b"")));
        table.push(s(peek.clone(), b"NOT_FOUND\r\n", Ok(V::NoJob)));
        table.push(s(
            peek.clone(),
            b"RESERVED 4 3\r\nabc\r\n",
            unexpected(name, W::Reserved),
        ));
        table.push(s(peek, b"DELETED\r\n", unexpected(name, W::Deleted)));
    }
    table
}

#[test]
fn protocol_replies_command_by_command() {
    let table = protocol_table();
    assert!(table.len() > 90);
    for step in &table {
        check_every_split(step);
    }
}

#[test]
fn server_errors_after_any_command() {
    // OUT_OF_MEMORY and INTERNAL_ERROR: the stream is in sync, the connection
    // stays usable. BAD_FORMAT / UNKNOWN_COMMAND after a one-line command are
    // harmless; after put they mean the body is being read as commands.
    // EXPECTED_CRLF is fatal after anything.
    let mut count = 0;
    for spec in CmdSpec::samples() {
        let is_put = matches!(spec, CmdSpec::Put { .. });
        let cases: [(&[u8], Outcome); 5] = [
            (b"OUT_OF_MEMORY\r\n", server(ServerError::OutOfMemory)),
            (b"INTERNAL_ERROR\r\n", server(ServerError::InternalError)),
            (
                b"BAD_FORMAT\r\n",
                if is_put {
                    desync("put", W::BadFormat)
                } else {
                    server(ServerError::BadFormat)
                },
            ),
            (
                b"UNKNOWN_COMMAND\r\n",
                if is_put {
                    desync("put", W::UnknownCommand)
                } else {
                    server(ServerError::UnknownCommand)
                },
            ),
            (b"EXPECTED_CRLF\r\n", desync(spec.name(), W::ExpectedCrlf)),
        ];
        for (reply, expect) in cases {
            let step = Step::new(
                format!("{} <- {}", spec.name(), common::show(reply)),
                spec.typed(),
                reply,
                expect,
            );
            check_every_split(&step);
            count += 1;
        }
    }
    assert_eq!(count, 24 * 5);
}

#[test]
fn every_command_against_every_reply_shape() {
    // The full matrix: 24 commands x 25 reply shapes, expected by the
    // oracle in tests/common. Whatever does not fit must break the
    // connection with UnexpectedReply (or Desync/TubeMismatch).
    let mut accepted = 0;
    let mut rejected = 0;
    for spec in CmdSpec::samples() {
        let mut fits = 0;
        for reply in ReplySpec::samples() {
            let step = Step::from_spec(&spec, &reply);
            if step.keeps_connection() {
                fits += 1;
                accepted += 1;
            } else {
                rejected += 1;
            }
            check_every_split(&step);
        }
        // Every command accepts at least its success reply plus the four
        // universal ones (OOM, INTERNAL_ERROR, DRAINING and, except put,
        // BAD_FORMAT/UNKNOWN_COMMAND).
        assert!(fits >= 4, "{}", spec.name());
    }
    assert_eq!(accepted + rejected, 24 * 25);
    println!("matrix: {accepted} accepted, {rejected} rejected");
}

#[test]
fn a_reply_that_does_not_fit_is_rejected_before_its_body_is_consumed_or_typed() {
    // FOUND after delete: the body must not be handed out as anything; the
    // bytes after it are not decoded as a reply to the next command.
    let mut conn = beanstalk_proto::Connection::default();
    let mut out = WriteBuf::new();
    conn.send(&cmd::Delete::new(1), &mut out).unwrap();
    conn.send(&cmd::Delete::new(2), &mut out).unwrap();
    let mut src = BytesMut::from(&b"FOUND 1 9\r\nDELETED\r\n\r\nDELETED\r\n"[..]);
    let err = conn.poll_response(&mut src).unwrap_err();
    assert_eq!(
        err,
        ProtocolError::UnexpectedReply {
            command: "delete",
            reply: W::Found
        }
    );
    assert_eq!(conn.poll_response(&mut src), Err(err));
    assert_eq!(conn.in_flight(), 0);
}

#[test]
fn a_reply_that_does_not_fit_is_rejected_on_its_line_before_its_body_comes() {
    // A megabyte announced after a delete: failing now, not after waiting
    // for (and buffering) a body that could never answer the command.
    let mut conn = beanstalk_proto::Connection::default();
    conn.send(&cmd::Delete::new(1), &mut WriteBuf::new())
        .unwrap();
    let mut src = BytesMut::from(&b"OK 1000000\r\n"[..]);
    assert_eq!(
        conn.poll_response(&mut src),
        Err(ProtocolError::UnexpectedReply {
            command: "delete",
            reply: W::Ok
        })
    );
    // Nothing in flight: unsolicited on its line too.
    let mut conn = beanstalk_proto::Connection::default();
    let mut src = BytesMut::from(&b"RESERVED 1 5\r\nhe"[..]);
    assert_eq!(
        conn.poll_response(&mut src),
        Err(ProtocolError::Unsolicited(W::Reserved))
    );
}
