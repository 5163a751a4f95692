//! Stats and tube lists from real 1.12 and 1.13 servers, decoded through a
//! `Connection`: every field against the captured values, quoting
//! differences, unknown and missing keys, and number quirks.

mod common;

use beanstalk_proto::stats::{JobState, JobStats, ServerStats, TubeList, TubeStats, entries};
use beanstalk_proto::{Request, cmd};
use bytes::Bytes;
use common::{VERSIONS, decode_one, fixture};

/// The `key: value` pairs of a captured body, read independently of the
/// crate: split lines at the first ": " and drop surrounding quotes.
fn pairs_of(reply: &[u8]) -> Vec<(String, String)> {
    let text = std::str::from_utf8(reply).unwrap();
    let (_, body) = text.split_once("\r\n").unwrap();
    let body = body.strip_suffix("\r\n").unwrap();
    body.lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| {
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v);
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

/// Whether `part` points into `whole` (shared, not copied).
fn points_into(part: &str, whole: &Bytes) -> bool {
    let range = whole.as_ptr_range();
    let p = part.as_ptr();
    !part.is_empty() && range.contains(&p) && p.wrapping_add(part.len()) <= range.end
}

#[test]
fn server_stats_every_field() {
    for version in VERSIONS {
        let reply = fixture(version, "stats.bin");
        let s: ServerStats = decode_one(&cmd::Stats, &reply).unwrap();
        let v13 = version != "1.12";
        assert_eq!(s.current_jobs_urgent, 0);
        assert_eq!(s.current_jobs_ready, 1);
        assert_eq!(s.current_jobs_reserved, 1);
        assert_eq!(s.current_jobs_delayed, 1);
        assert_eq!(s.current_jobs_buried, 0);
        assert_eq!(s.cmd_put, 3);
        assert_eq!(s.cmd_peek, 0);
        assert_eq!(s.cmd_peek_ready, 0);
        assert_eq!(s.cmd_peek_delayed, 0);
        assert_eq!(s.cmd_peek_buried, 0);
        assert_eq!(s.cmd_reserve, 0);
        assert_eq!(s.cmd_reserve_with_timeout, 1);
        assert_eq!(s.cmd_delete, 0);
        assert_eq!(s.cmd_release, 0);
        assert_eq!(s.cmd_use, 1);
        assert_eq!(s.cmd_watch, 1);
        assert_eq!(s.cmd_ignore, 2);
        assert_eq!(s.cmd_bury, 0);
        assert_eq!(s.cmd_kick, 0);
        assert_eq!(s.cmd_touch, 0);
        assert_eq!(s.cmd_stats, 1);
        assert_eq!(s.cmd_stats_job, 1);
        assert_eq!(s.cmd_stats_tube, 1);
        assert_eq!(s.cmd_list_tubes, 0);
        assert_eq!(s.cmd_list_tube_used, 0);
        assert_eq!(s.cmd_list_tubes_watched, 0);
        assert_eq!(s.cmd_pause_tube, 0);
        assert_eq!(s.job_timeouts, 0);
        assert_eq!(s.total_jobs, 3);
        assert_eq!(s.max_job_size, 65_535);
        assert_eq!(s.current_tubes, 2);
        assert_eq!(s.current_connections, 1);
        assert_eq!(s.current_producers, 1);
        assert_eq!(s.current_workers, 1);
        assert_eq!(s.current_waiting, 0);
        assert_eq!(s.total_connections, 1);
        assert_eq!(s.pid, if v13 { 18_268 } else { 18_226 });
        assert_eq!(s.version, if v13 { "unknown" } else { "1.12" });
        assert_eq!(s.rusage_utime, if v13 { 0.001_292 } else { 0.0 });
        assert_eq!(s.rusage_stime, if v13 { 0.0 } else { 0.003_214 });
        assert_eq!(s.uptime, 4);
        assert_eq!(s.binlog_oldest_index, 0);
        assert_eq!(s.binlog_current_index, 0);
        assert_eq!(s.binlog_records_migrated, 0);
        assert_eq!(s.binlog_records_written, 0);
        assert_eq!(s.binlog_max_size, 10_485_760);
        assert!(!s.draining);
        assert_eq!(
            s.id,
            if v13 {
                "dae3e7eab74059e7"
            } else {
                "894bf9f62385cf2b"
            }
        );
        // 1.12 prints these unquoted (os would be a YAML comment), 1.13
        // quotes them; both read the same.
        assert_eq!(s.hostname, "vm");
        assert_eq!(s.os, "#1 SMP PREEMPT_DYNAMIC @0");
        assert_eq!(s.platform, "x86_64");
        assert_eq!(s.get("os"), Some("#1 SMP PREEMPT_DYNAMIC @0"));
        assert_eq!(s.get("hostname"), Some("vm"));
        assert_eq!(s.get("version"), Some(if v13 { "unknown" } else { "1.12" }));
        // Strings share the reply's buffer.
        for text in [&s.os, &s.hostname, &s.version, &s.id, &s.platform] {
            assert!(points_into(text, s.raw()), "{text:?} copied");
        }
        // The raw body is the reply minus line and CRLF.
        let line_len = reply.windows(2).position(|w| w == b"\r\n").unwrap() + 2;
        assert_eq!(&s.raw()[..], &reply[line_len..reply.len() - 2]);
        check_iter_and_get(&reply, s.iter().collect(), |k| s.get(k));
        assert_eq!(s.iter().count(), 51);
    }
}

/// `iter()` yields exactly the captured pairs in order; `get()` finds each.
fn check_iter_and_get<'a>(
    reply: &[u8],
    iterated: Vec<(&str, &str)>,
    get: impl Fn(&str) -> Option<&'a str>,
) {
    let pairs = pairs_of(reply);
    let iterated: Vec<(String, String)> = iterated
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    assert_eq!(iterated, pairs);
    for (k, v) in &pairs {
        assert_eq!(get(k), Some(v.as_str()), "{k}");
    }
    assert_eq!(get("no-such-key"), None);
}

#[test]
fn tube_stats_every_field() {
    for version in VERSIONS {
        let reply = fixture(version, "stats-tube.bin");
        let t: TubeStats =
            decode_one(&cmd::StatsTube::new("capture-tube").unwrap(), &reply).unwrap();
        assert_eq!(t.name, "capture-tube", "{version}: quotes stripped");
        assert_eq!(t.current_jobs_urgent, 0);
        assert_eq!(t.current_jobs_ready, 1);
        assert_eq!(t.current_jobs_reserved, 1);
        assert_eq!(t.current_jobs_delayed, 1);
        assert_eq!(t.current_jobs_buried, 0);
        assert_eq!(t.total_jobs, 3);
        assert_eq!(t.current_using, 1);
        assert_eq!(t.current_watching, 1);
        assert_eq!(t.current_waiting, 0);
        assert_eq!(t.cmd_delete, 0);
        assert_eq!(t.cmd_pause_tube, 0);
        assert_eq!(t.pause, 0);
        assert_eq!(t.pause_time_left, 0);
        assert!(points_into(&t.name, t.raw()));
        check_iter_and_get(&reply, t.iter().collect(), |k| t.get(k));
        assert_eq!(t.iter().count(), 14);
    }
}

#[test]
fn job_stats_every_field() {
    for version in VERSIONS {
        let reply = fixture(version, "stats-job.bin");
        let j: JobStats = decode_one(&cmd::StatsJob::new(2), &reply).unwrap();
        assert_eq!(j.id, 2);
        assert_eq!(j.tube, "capture-tube", "{version}: quotes stripped");
        assert_eq!(j.state, JobState::Reserved);
        assert_eq!(j.pri, 5);
        assert_eq!(j.age, 2);
        assert_eq!(j.delay, 0);
        assert_eq!(j.ttr, 60);
        assert_eq!(j.time_left, 59);
        assert_eq!(j.file, 0);
        assert_eq!(j.reserves, 1);
        assert_eq!(j.timeouts, 0);
        assert_eq!(j.releases, 0);
        assert_eq!(j.buries, 0);
        assert_eq!(j.kicks, 0);
        check_iter_and_get(&reply, j.iter().collect(), |k| j.get(k));
        assert_eq!(j.iter().count(), 14);
    }
}

#[test]
fn not_found_stats() {
    for version in VERSIONS {
        let reply = fixture(version, "stats-tube-not-found.bin");
        let err = decode_one(&cmd::StatsTube::new("nosuchtube").unwrap(), &reply).unwrap_err();
        assert!(matches!(err, beanstalk_proto::Error::NotFound), "{err:?}");
    }
}

#[test]
fn tube_lists() {
    for version in VERSIONS {
        let all: TubeList =
            decode_one(&cmd::ListTubes, &fixture(version, "list-tubes.bin")).unwrap();
        assert_eq!(all.iter().collect::<Vec<_>>(), ["default", "capture-tube"]);
        assert_eq!(all.len(), 2);
        assert!(!all.is_empty());
        assert!(all.contains("capture-tube"));
        assert!(!all.contains("capture"));
        let tubes = all.to_tubes();
        assert_eq!(tubes.len(), 2);
        assert_eq!(tubes[1].as_str(), "capture-tube");
        assert!(
            points_into(tubes[1].as_str(), all.raw()),
            "to_tubes shares the buffer"
        );
        let watched: TubeList = decode_one(
            &cmd::ListTubesWatched,
            &fixture(version, "list-tubes-watched.bin"),
        )
        .unwrap();
        assert_eq!(watched.iter().collect::<Vec<_>>(), ["capture-tube"]);
    }
    // Quoted items, an empty list, and items that are not tube names.
    let list = TubeList::parse(Bytes::from_static(
        b"---\n- \"quoted\"\n- plain\n-nospace\n- bad name\n- -x\n- \n",
    ));
    assert_eq!(list.iter().collect::<Vec<_>>(), ["quoted", "plain"]);
    let empty = TubeList::parse(Bytes::from_static(b"---\n"));
    assert!(empty.is_empty());
    assert_eq!(empty.len(), 0);
    // A 200-byte name is a name; 201 is not.
    let body = format!("---\n- {}\n- {}\n", "a".repeat(200), "b".repeat(201));
    let list = TubeList::parse(Bytes::from(body));
    assert_eq!(list.iter().map(str::len).collect::<Vec<_>>(), [200]);
}

#[test]
fn unknown_keys_are_reachable() {
    let body = Bytes::from_static(
        b"---\nid: 7\nbrand-new-key: 42\nstate: ready\nother: \"quoted value\"\n",
    );
    let j = JobStats::parse(body.clone());
    assert_eq!(j.id, 7);
    assert_eq!(j.state, JobState::Ready);
    assert_eq!(j.get("brand-new-key"), Some("42"));
    assert_eq!(j.get("other"), Some("quoted value"));
    assert_eq!(
        j.iter().collect::<Vec<_>>(),
        [
            ("id", "7"),
            ("brand-new-key", "42"),
            ("state", "ready"),
            ("other", "quoted value")
        ]
    );
    let s = ServerStats::parse(body.clone());
    assert_eq!(s.get("brand-new-key"), Some("42"));
    let t = TubeStats::parse(body);
    assert_eq!(t.get("brand-new-key"), Some("42"));
    // The free function sees the same.
    assert_eq!(
        entries(b"---\na: 1\nb: \"2\"\n").collect::<Vec<_>>(),
        [("a", "1"), ("b", "2")]
    );
}

#[test]
fn missing_keys_leave_defaults() {
    let s = ServerStats::parse(Bytes::from_static(b"---\n"));
    assert_eq!(s.total_jobs, 0);
    assert_eq!(s.pid, 0);
    assert_eq!(s.version, "");
    assert_eq!(s.os, "");
    assert!(!s.draining);
    assert_eq!(s.rusage_utime, 0.0);
    assert_eq!(s.iter().count(), 0);
    let j = JobStats::parse(Bytes::from_static(b"---\nid: 3\n"));
    assert_eq!((j.id, j.pri, j.ttr), (3, 0, 0));
    assert_eq!(j.state, JobState::Unknown, "a missing state is Unknown");
    assert_eq!(j.tube, "");
    let t = TubeStats::parse(Bytes::new());
    assert_eq!((t.name.as_str(), t.total_jobs), ("", 0));
    // Only the keys that are there are filled.
    let s = ServerStats::parse(Bytes::from_static(b"---\ndraining: true\ncmd-put: 9\n"));
    assert!(s.draining);
    assert_eq!(s.cmd_put, 9);
    assert_eq!(s.cmd_peek, 0);
}

#[test]
fn number_quirks() {
    // A float where an integer is documented keeps its integer part.
    let j = JobStats::parse(Bytes::from_static(
        b"---\nid: 12.0\nage: 12.9\npri: 5.5\nttr: .5\ndelay: 1e3\n",
    ));
    assert_eq!(j.id, 12);
    assert_eq!(j.age, 12);
    assert_eq!(j.pri, 5);
    assert_eq!(j.ttr, 0, "no integer part: default");
    assert_eq!(j.delay, 0, "not decimal: default");
    // Out of range or signed values leave the default.
    let j = JobStats::parse(Bytes::from_static(
        b"---\npri: 4294967296\nid: 18446744073709551616\nage: -1\n",
    ));
    assert_eq!((j.pri, j.id, j.age), (0, 0, 0));
    let j = JobStats::parse(Bytes::from_static(
        b"---\npri: 4294967295\nid: 18446744073709551615\n",
    ));
    assert_eq!((j.pri, j.id), (u32::MAX, u64::MAX));
    // Quoted numbers and floats.
    let s = ServerStats::parse(Bytes::from_static(
        b"---\npid: \"42\"\nrusage-utime: 1.25\nrusage-stime: \"0.5\"\ndraining: \"true\"\n",
    ));
    assert_eq!(s.pid, 42);
    assert_eq!(s.rusage_utime, 1.25);
    assert_eq!(s.rusage_stime, 0.5);
    assert!(s.draining);
    // A bool that is not true/false leaves the default.
    let s = ServerStats::parse(Bytes::from_static(b"---\ndraining: yes\n"));
    assert!(!s.draining);
}

#[test]
fn job_states() {
    for (text, state) in [
        ("ready", JobState::Ready),
        ("delayed", JobState::Delayed),
        ("reserved", JobState::Reserved),
        ("buried", JobState::Buried),
        ("\"buried\"", JobState::Buried),
        ("invalid", JobState::Unknown),
    ] {
        let j = JobStats::parse(Bytes::from(format!("---\nstate: {text}\n")));
        assert_eq!(j.state, state, "{text}");
    }
}

#[test]
fn values_with_colons_and_odd_lines() {
    let s = ServerStats::parse(Bytes::from_static(
        b"---\nos: Linux 6.1: custom\nhostname:   spaced  \nnot a pair\n\xff\xfe: x\nplatform: \"\n",
    ));
    assert_eq!(s.os, "Linux 6.1: custom");
    assert_eq!(s.hostname, "spaced");
    // A lone quote is kept as is rather than panicking.
    assert_eq!(s.platform, "\"");
}

#[test]
fn stats_from_response_rejects_other_replies() {
    // The connection rejects unfitting replies first; from_response on its
    // own still refuses a reply of the wrong shape rather than panic.
    let err = cmd::Stats::from_response(beanstalk_proto::Response::Inserted(1)).unwrap_err();
    assert!(
        matches!(
            err,
            beanstalk_proto::Error::Protocol(beanstalk_proto::ProtocolError::UnexpectedReply {
                command: "stats",
                ..
            })
        ),
        "{err:?}"
    );
}

/// With the `serde` feature, stats serialize under the server's key names.
#[cfg(feature = "serde")]
#[test]
fn stats_serialize_with_server_key_names() {
    let stats = JobStats::parse(Bytes::from_static(
        b"---\nid: 2\ntube: \"emails\"\nstate: buried\npri: 5\n",
    ));
    let json = serde_json::to_value(&stats).unwrap();
    assert_eq!(json["id"], 2);
    assert_eq!(json["tube"], "emails");
    assert_eq!(json["state"], "buried");
    assert_eq!(json["time-left"], 0);
    let list = TubeList::parse(Bytes::from_static(b"---\n- default\n- a\n"));
    assert_eq!(serde_json::to_string(&list).unwrap(), r#"["default","a"]"#);
}
