//! Tests for the fixtures themselves, against the real beanstalkd, using only
//! std sockets (never the client crates the kit is meant to test).

use std::fs;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use beanstalk_test_support::{Address, Direction, FakePeer, FaultPlan, FaultProxy, Server};

const TIMEOUT: Duration = Duration::from_secs(5);

fn tcp(addr: std::net::SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s
}

/// Reads one reply independently of the kit's own reader: a CRLF line plus,
/// for OK/FOUND/RESERVED, the announced body and its CRLF.
fn reply(r: &mut impl BufRead) -> Vec<u8> {
    let mut out = Vec::new();
    while !out.ends_with(b"\r\n") {
        assert_ne!(
            r.read_until(b'\n', &mut out).unwrap(),
            0,
            "EOF after {out:?}"
        );
    }
    let line = String::from_utf8(out[..out.len() - 2].to_vec()).unwrap();
    let words: Vec<&str> = line.split(' ').collect();
    if matches!(words[0], "OK" | "FOUND" | "RESERVED") {
        let len: usize = words.last().unwrap().parse().unwrap();
        let start = out.len();
        out.resize(start + len + 2, 0);
        r.read_exact(&mut out[start..]).unwrap();
        assert!(out.ends_with(b"\r\n"));
    }
    out
}

/// Sends `cmd` and reads one reply on an existing connection.
fn call<S: Read + Write>(s: &mut BufReader<S>, cmd: &[u8]) -> Vec<u8> {
    s.get_mut().write_all(cmd).unwrap();
    reply(s)
}

fn read_to_eof(s: &mut impl Read) -> Vec<u8> {
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("clean EOF");
    out
}

fn inserted_id(reply: &[u8]) -> u64 {
    let text = std::str::from_utf8(reply).unwrap();
    text.strip_prefix("INSERTED ")
        .and_then(|r| r.strip_suffix("\r\n"))
        .unwrap_or_else(|| panic!("expected INSERTED, got {text:?}"))
        .parse()
        .unwrap()
}

/// Polls until `f` holds, for at most 1 s; for counters updated by other threads.
fn eventually(mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        thread::sleep(Duration::from_millis(2));
    }
    f()
}

/// Whether process `pid` has exited and been reaped. Uses /proc (Linux); where
/// there is none this cannot tell and says yes.
fn process_gone(pid: u32) -> bool {
    !Path::new("/proc/self").exists() || !Path::new(&format!("/proc/{pid}")).exists()
}

/// Names of this process's threads that start with `prefix` (Linux; empty
/// elsewhere). The kit names its threads after their port for this check.
fn threads_named(prefix: &str) -> Vec<String> {
    let Ok(tasks) = fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    tasks
        .filter_map(|t| fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|comm| comm.trim_end().to_owned())
        .filter(|comm| comm.starts_with(prefix))
        .collect()
}

/// A server holding one job with body `hello`; returns it with the job id and
/// the direct `peek` reply for comparison.
fn server_with_job() -> (Server, u64, Vec<u8>) {
    let server = Server::start();
    let id = inserted_id(&server.raw_command(b"put 0 0 60 5\r\nhello\r\n"));
    let peek = server.raw_command(format!("peek {id}\r\n").as_bytes());
    assert_eq!(peek, format!("FOUND {id} 5\r\nhello\r\n").into_bytes());
    (server, id, peek)
}

#[test]
fn tcp_server_put_reserve_round_trip() {
    let server = Server::start();
    let addr = server.tcp_addr();
    assert!(addr.ip().is_loopback());
    assert_ne!(addr.port(), 0);
    assert_eq!(server.addr(), Address::Tcp(addr));
    assert_eq!(server.addr().to_string(), addr.to_string());
    assert_eq!(
        server.url(),
        format!("beanstalk://127.0.0.1:{}", addr.port())
    );
    assert_eq!(server.unix_path(), None);
    assert!(server.is_running());

    let mut s = BufReader::new(tcp(addr));
    let id = inserted_id(&call(&mut s, b"put 0 0 60 5\r\nhello\r\n"));
    assert_eq!(
        call(&mut s, b"reserve-with-timeout 0\r\n"),
        format!("RESERVED {id} 5\r\nhello\r\n").into_bytes()
    );
    assert_eq!(
        call(&mut s, format!("delete {id}\r\n").as_bytes()),
        b"DELETED\r\n"
    );
}

#[test]
fn unix_server_put_reserve_round_trip() {
    let server = Server::builder().unix_socket().start();
    let path = server.unix_path().expect("unix path").to_path_buf();
    assert!(path.is_absolute());
    assert_eq!(server.addr(), Address::Unix(path.clone()));
    assert_eq!(server.url(), format!("unix://{}", path.display()));
    assert!(server.url().starts_with("unix:///"));
    assert_eq!(server.addr().to_string(), server.url());

    let s = UnixStream::connect(&path).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut s = BufReader::new(s);
    let id = inserted_id(&call(&mut s, b"put 7 0 60 3\r\nabc\r\n"));
    assert_eq!(
        call(&mut s, b"reserve-with-timeout 0\r\n"),
        format!("RESERVED {id} 3\r\nabc\r\n").into_bytes()
    );
    assert_eq!(server.stats_counter("current-jobs-reserved"), 1);

    let dir = path.parent().unwrap().to_path_buf();
    drop(s);
    drop(server);
    assert!(
        !dir.exists(),
        "socket temp dir {} not removed",
        dir.display()
    );
}

#[test]
#[should_panic(expected = "tcp_addr() on a server listening on the Unix socket")]
fn tcp_addr_of_unix_server_panics() {
    Server::builder().unix_socket().start().tcp_addr();
}

#[test]
fn kill9_and_restart_keep_binlog_job_and_address() {
    let mut server = Server::builder().binlog_temp().start();
    let addr = server.addr();
    let old_pid = server.pid();
    let dir = server.binlog_dir().expect("binlog dir").to_path_buf();
    let id = inserted_id(&server.raw_command(b"put 0 0 60 3\r\nabc\r\n"));

    server.kill9();
    assert!(!server.is_running());
    assert!(
        process_gone(old_pid),
        "pid {old_pid} not reaped after kill9"
    );

    server.restart();
    assert!(server.is_running());
    assert_eq!(server.addr(), addr);
    assert_ne!(server.pid(), old_pid);
    assert_eq!(
        server.raw_command(format!("peek {id}\r\n").as_bytes()),
        format!("FOUND {id} 3\r\nabc\r\n").into_bytes()
    );
    assert!(dir.join("binlog.1").is_file());

    // restart() also works on a running server, and twice in a row.
    server.restart();
    assert_eq!(server.addr(), addr);
    assert_eq!(server.stats_counter("current-jobs-ready"), 1);

    drop(server);
    assert!(!dir.exists(), "binlog temp dir not removed");
}

#[test]
fn restart_unix_server_keeps_path_and_caller_binlog() {
    let binlog = tempfile::tempdir().unwrap();
    let mut server = Server::builder()
        .unix_socket()
        .binlog(binlog.path())
        .fsync_never()
        .start();
    assert_eq!(server.binlog_dir(), Some(binlog.path()));
    let path = server.unix_path().unwrap().to_path_buf();
    let id = inserted_id(&server.raw_command(b"put 0 0 60 2\r\nhi\r\n"));
    server.restart();
    assert_eq!(server.unix_path(), Some(path.as_path()));
    assert_eq!(
        server.raw_command(format!("peek {id}\r\n").as_bytes()),
        format!("FOUND {id} 2\r\nhi\r\n").into_bytes()
    );
    drop(server);
    assert!(
        binlog.path().join("binlog.1").is_file(),
        "caller's binlog dir was touched"
    );
}

#[test]
fn stop_then_restart() {
    let mut server = Server::start();
    server.stop();
    assert!(!server.is_running());
    assert!(process_gone(server.pid()));
    server.restart();
    assert!(server.is_running());
    assert!(server.raw_command(b"stats\r\n").starts_with(b"OK "));
}

#[test]
fn drop_kills_the_process() {
    let server = Server::start();
    let pid = server.pid();
    assert!(!process_gone(pid));
    drop(server);
    assert!(process_gone(pid), "pid {pid} not reaped after drop");
}

#[test]
fn drain_makes_put_answer_draining() {
    let server = Server::start();
    assert!(
        server
            .raw_command(b"put 0 0 60 1\r\nx\r\n")
            .starts_with(b"INSERTED ")
    );
    server.drain();
    assert_eq!(
        server.raw_command(b"put 0 0 60 1\r\nx\r\n"),
        b"DRAINING\r\n"
    );
    assert!(
        server
            .raw_command(b"reserve-with-timeout 0\r\n")
            .starts_with(b"RESERVED ")
    );
}

#[test]
fn stats_counter_counts_one_put() {
    let server = Server::start();
    let before = server.stats_counter("cmd-put");
    server.raw_command(b"put 0 0 60 1\r\nx\r\n");
    assert_eq!(server.stats_counter("cmd-put"), before + 1);
    assert_eq!(server.stats()["draining"], "false");
}

#[test]
#[should_panic(expected = "stats has no key")]
fn stats_counter_panics_on_missing_key() {
    Server::start().stats_counter("no-such-key");
}

#[test]
fn max_job_size_and_extra_args_reach_the_server() {
    let server = Server::builder().max_job_size(10).arg("-F").start();
    assert_eq!(server.stats_counter("max-job-size"), 10);
    assert_eq!(
        server.raw_command(b"put 0 0 60 11\r\nhello world\r\n"),
        b"JOB_TOO_BIG\r\n"
    );
}

#[test]
#[should_panic(
    expected = "beanstalkd not found: install it with `sudo apt-get install -y beanstalkd` (Debian/Ubuntu) or set BEANSTALKD_BIN"
)]
fn missing_binary_panics_with_instructions() {
    Server::builder().binary("/nonexistent/beanstalkd").start();
}

#[test]
#[should_panic(expected = "invalid size")]
fn bad_arguments_panic_with_server_output() {
    Server::builder().arg("-z").arg("abc").start();
}

#[test]
fn proxy_without_faults_is_transparent() {
    let (server, id, peek) = server_with_job();
    let proxy = FaultProxy::start(&server.addr(), FaultPlan::new());
    assert_eq!(proxy.url(), format!("beanstalk://{}", proxy.addr()));
    let mut s = BufReader::new(tcp(proxy.addr()));
    let cmd = format!("peek {id}\r\n");
    assert_eq!(call(&mut s, cmd.as_bytes()), peek);
    assert_eq!(proxy.connections(), 1);
    // Exact, without polling: counts include everything the peer has seen.
    assert_eq!(
        proxy.bytes_forwarded(Direction::Downstream),
        peek.len() as u64
    );
    assert_eq!(proxy.bytes_forwarded(Direction::Upstream), cmd.len() as u64);
}

#[test]
fn proxy_listens_on_a_unix_socket() {
    let (server, id, peek) = server_with_job();
    let proxy = FaultProxy::start_unix(&server.addr(), FaultPlan::new());
    let Address::Unix(path) = proxy.address().clone() else {
        panic!("not a Unix socket: {}", proxy.address());
    };
    assert_eq!(proxy.url(), format!("unix://{}", path.display()));
    let s = UnixStream::connect(&path).expect("connect");
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut s = BufReader::new(s);
    let cmd = format!("peek {id}\r\n");
    assert_eq!(call(&mut s, cmd.as_bytes()), peek);
    assert_eq!(proxy.connections(), 1);
    assert_eq!(proxy.bytes_forwarded(Direction::Upstream), cmd.len() as u64);
    drop(proxy);
    assert_eq!(read_to_eof(&mut s), b"");
    assert!(!path.exists(), "the socket's directory goes with the proxy");
}

#[test]
#[should_panic(expected = "addr() on a proxy listening on the Unix socket")]
fn tcp_addr_of_unix_proxy_panics() {
    let server = Server::start();
    FaultProxy::start_unix(&server.addr(), FaultPlan::new()).addr();
}

#[test]
fn proxy_one_byte_chunks_downstream_delivers_complete_replies() {
    let (server, id, peek) = server_with_job();
    let proxy = FaultProxy::start(
        &server.addr(),
        FaultPlan::new().one_byte_chunks(Direction::Downstream),
    );
    let mut s = BufReader::new(tcp(proxy.addr()));
    assert_eq!(call(&mut s, format!("peek {id}\r\n").as_bytes()), peek);

    let direct = server.raw_command(b"stats\r\n");
    let proxied = call(&mut s, b"stats\r\n");
    assert!(proxied.starts_with(b"OK "));
    // Same keys, in the same order; only the counter values differ.
    let keys = |r: &[u8]| -> Vec<String> {
        String::from_utf8_lossy(r)
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(':').map(|(k, _)| k.to_owned()))
            .collect()
    };
    assert_eq!(keys(&proxied), keys(&direct));
    assert!(keys(&proxied).len() > 40);
}

#[test]
fn proxy_one_byte_chunks_with_delay_paces_every_byte() {
    const PACE: Duration = Duration::from_millis(5);
    let (server, id, peek) = server_with_job();
    let proxy = FaultProxy::start(
        &server.addr(),
        FaultPlan::new()
            .one_byte_chunks(Direction::Downstream)
            .delay(Direction::Downstream, PACE),
    );
    let mut s = tcp(proxy.addr());
    s.write_all(format!("peek {id}\r\n").as_bytes()).unwrap();
    let started = Instant::now();
    let mut got = Vec::new();
    let mut reads = 0;
    let mut buf = [0u8; 64];
    while got.len() < peek.len() {
        let n = s.read(&mut buf).unwrap();
        assert_ne!(n, 0);
        got.extend_from_slice(&buf[..n]);
        reads += 1;
    }
    assert_eq!(got, peek);
    // Every byte waits PACE before it is written, so the whole reply cannot
    // arrive sooner than this, however the reads were scheduled.
    let floor = PACE * u32::try_from(peek.len()).unwrap();
    assert!(
        started.elapsed() >= floor,
        "{:?} < {floor:?}",
        started.elapsed()
    );
    // The exact count depends on scheduling (a reader descheduled for a while
    // finds several bytes waiting), but the reply is never one piece unless
    // this thread stalls for the whole ~90 ms.
    assert!(reads >= 2, "{reads} reads for {} bytes", peek.len());
}

#[test]
fn proxy_cut_after_downstream_gives_eof_after_exactly_n_bytes() {
    let (server, id, peek) = server_with_job();
    let proxy = FaultProxy::start(
        &server.addr(),
        FaultPlan::new().cut_after(Direction::Downstream, 7),
    );
    let mut s = tcp(proxy.addr());
    s.write_all(format!("peek {id}\r\n").as_bytes()).unwrap();
    assert_eq!(read_to_eof(&mut s), &peek[..7]);
    // Both legs are gone, so the client cannot send more either.
    assert!(eventually(|| s.write_all(b"stats\r\n").is_err()));
}

#[test]
fn proxy_cut_after_upstream_means_nothing_reaches_the_server() {
    let server = Server::start();
    let before = server.stats_counter("cmd-put");
    let proxy = FaultProxy::start(
        &server.addr(),
        FaultPlan::new().cut_after(Direction::Upstream, 8),
    );
    let mut s = tcp(proxy.addr());
    // The put is cut inside its command line, so the server never completes it.
    let _ = s.write_all(b"put 0 0 60 5\r\nhello\r\n");
    assert_eq!(read_to_eof(&mut s), b"");
    assert_eq!(proxy.bytes_forwarded(Direction::Upstream), 8);
    assert_eq!(server.stats_counter("cmd-put"), before);
}

#[test]
fn proxy_stall_after_makes_reads_time_out() {
    let (server, id, peek) = server_with_job();
    let proxy = FaultProxy::start(
        &server.addr(),
        FaultPlan::new().stall_after(Direction::Downstream, 4),
    );
    let mut s = tcp(proxy.addr());
    s.write_all(format!("peek {id}\r\n").as_bytes()).unwrap();
    let mut head = [0u8; 4];
    s.read_exact(&mut head).unwrap();
    assert_eq!(head, peek[..4]);

    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let started = Instant::now();
    let err = s.read(&mut [0u8; 16]).expect_err("read should time out");
    assert!(
        matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{err}"
    );
    assert!(started.elapsed() >= Duration::from_millis(250));
    // Stalled, not closed: the client can still write.
    s.write_all(b"stats\r\n").unwrap();
}

#[test]
fn proxy_stall_now_and_resume() {
    let (server, id, peek) = server_with_job();
    let proxy = FaultProxy::start(&server.addr(), FaultPlan::new());
    let mut s = BufReader::new(tcp(proxy.addr()));
    let cmd = format!("peek {id}\r\n");
    assert_eq!(call(&mut s, cmd.as_bytes()), peek);

    proxy.stall_now();
    s.get_mut().write_all(cmd.as_bytes()).unwrap();
    s.get_ref()
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let err = s
        .get_mut()
        .read(&mut [0u8; 16])
        .expect_err("stalled read should time out");
    assert!(
        matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{err}"
    );

    proxy.resume();
    s.get_ref().set_read_timeout(Some(TIMEOUT)).unwrap();
    assert_eq!(reply(&mut s), peek);
}

/// The first chunk waits for the hold, then everything goes through; the
/// instant the reply was forwarded is when the client could first read it.
#[test]
fn proxy_hold_first_delays_the_first_chunk_once() {
    const HOLD: Duration = Duration::from_millis(300);
    let (server, id, peek) = server_with_job();
    let proxy = FaultProxy::start(
        &server.addr(),
        FaultPlan::new().hold_first(Direction::Upstream, HOLD),
    );
    assert_eq!(proxy.last_forwarded(Direction::Downstream), None);
    let mut s = BufReader::new(tcp(proxy.addr()));
    let cmd = format!("peek {id}\r\n");
    let started = Instant::now();
    assert_eq!(call(&mut s, cmd.as_bytes()), peek);
    let read = Instant::now();
    assert!(read - started >= HOLD, "{:?}", read - started);
    let forwarded = proxy
        .last_forwarded(Direction::Downstream)
        .expect("the reply was forwarded");
    assert!(started + HOLD <= forwarded && forwarded <= read);
    // Held once: the next command goes straight through.
    let started = Instant::now();
    assert_eq!(call(&mut s, cmd.as_bytes()), peek);
    assert!(started.elapsed() < HOLD, "{:?}", started.elapsed());
    assert!(proxy.last_forwarded(Direction::Downstream).unwrap() > forwarded);
}

#[test]
fn proxy_corrupt_byte_changes_exactly_that_byte() {
    let (server, id, peek) = server_with_job();
    let proxy = FaultProxy::start(
        &server.addr(),
        FaultPlan::new().corrupt_byte(Direction::Downstream, 12, b'X'),
    );
    let mut s = BufReader::new(tcp(proxy.addr()));
    let got = call(&mut s, format!("peek {id}\r\n").as_bytes());
    assert_eq!(got.len(), peek.len());
    let diffs: Vec<usize> = (0..peek.len()).filter(|&i| got[i] != peek[i]).collect();
    assert_eq!(diffs, [12]);
    assert_eq!(got[12], b'X');
    // Offsets are per connection, not per reply: a second reply is untouched.
    assert_eq!(call(&mut s, format!("peek {id}\r\n").as_bytes()), peek);
}

#[test]
fn proxy_corrupt_byte_upstream_reaches_the_server() {
    let server = Server::start();
    let proxy = FaultProxy::start(
        &server.addr(),
        FaultPlan::new().corrupt_byte(Direction::Upstream, 0, b'x'),
    );
    let mut s = BufReader::new(tcp(proxy.addr()));
    assert_eq!(call(&mut s, b"stats\r\n"), b"UNKNOWN_COMMAND\r\n");
}

#[test]
fn proxy_half_close_downstream_keeps_upstream_open() {
    let server = Server::start();
    let before = server.stats_counter("cmd-put");
    let proxy = FaultProxy::start(
        &server.addr(),
        FaultPlan::new().half_close_after(Direction::Downstream, 0),
    );
    let mut s = tcp(proxy.addr());
    assert_eq!(read_to_eof(&mut s), b"");
    // Only the server->client side is closed: a put still reaches the server.
    s.write_all(b"put 0 0 60 1\r\nx\r\n").unwrap();
    assert!(eventually(|| server.stats_counter("cmd-put") == before + 1));
}

#[test]
fn proxy_cut_all_and_first_connections() {
    let (server, id, peek) = server_with_job();
    let proxy = FaultProxy::start(
        &server.addr(),
        FaultPlan::new()
            .corrupt_byte(Direction::Downstream, 0, b'#')
            .first_connections(1),
    );
    let cmd = format!("peek {id}\r\n");
    let mut first = BufReader::new(tcp(proxy.addr()));
    first.get_mut().write_all(cmd.as_bytes()).unwrap();
    let mut line = Vec::new();
    first.read_until(b'\n', &mut line).unwrap();
    assert_eq!(line, format!("#OUND {id} 5\r\n").into_bytes());

    let mut second = BufReader::new(tcp(proxy.addr()));
    assert_eq!(call(&mut second, cmd.as_bytes()), peek);
    assert_eq!(proxy.connections(), 2);

    proxy.cut_all();
    assert_eq!(read_to_eof(second.get_mut()), b"");
}

#[test]
fn proxy_to_unix_upstream() {
    let server = Server::builder().unix_socket().start();
    let proxy = FaultProxy::start(
        &server.addr(),
        FaultPlan::new().one_byte_chunks(Direction::Upstream),
    );
    let mut s = BufReader::new(tcp(proxy.addr()));
    let id = inserted_id(&call(&mut s, b"put 0 0 60 4\r\nunix\r\n"));
    assert_eq!(
        server.raw_command(format!("peek {id}\r\n").as_bytes()),
        format!("FOUND {id} 4\r\nunix\r\n").into_bytes()
    );
}

#[test]
fn proxy_with_dead_upstream_closes_the_client() {
    let mut server = Server::start();
    let proxy = FaultProxy::start(&server.addr(), FaultPlan::new());
    server.kill9();
    let mut s = tcp(proxy.addr());
    assert_eq!(read_to_eof(&mut s), b"");
    assert_eq!(proxy.connections(), 1);
}

#[test]
fn proxy_drop_closes_listener_and_connections() {
    let (server, id, peek) = server_with_job();
    let proxy = FaultProxy::start(
        &server.addr(),
        FaultPlan::new().stall_after(Direction::Downstream, 2),
    );
    let addr = proxy.addr();
    let mut s = tcp(addr);
    s.write_all(format!("peek {id}\r\n").as_bytes()).unwrap();
    let mut head = [0u8; 2];
    s.read_exact(&mut head).unwrap();
    assert_eq!(head, peek[..2]);
    let threads = format!("fp{}-", addr.port());
    assert_eq!(
        threads_named(&threads).len(),
        3,
        "accept thread and two pumps"
    );
    let started = Instant::now();
    drop(proxy);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "drop took {:?}",
        started.elapsed()
    );
    assert_eq!(read_to_eof(&mut s), b"");
    // Not "connect is refused": another test may already own the freed port.
    // A joined thread can linger in /proc for a moment while the kernel
    // reaps it, hence the polling.
    assert!(
        eventually(|| threads_named(&threads).is_empty()),
        "left behind: {:?}",
        threads_named(&threads)
    );
}

#[test]
fn fake_peer_sends_what_the_closure_writes() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let peer = {
        let seen = Arc::clone(&seen);
        FakePeer::start(move |s| {
            let mut line = Vec::new();
            BufReader::new(&*s).read_until(b'\n', &mut line).unwrap();
            seen.lock().unwrap().push(line);
            s.write_all(b"GARBAGE\n\x00\xff").unwrap();
        })
    };
    assert_eq!(peer.url(), format!("beanstalk://{}", peer.addr()));
    for _ in 0..2 {
        let mut s = tcp(peer.addr());
        s.write_all(b"stats\r\n").unwrap();
        assert_eq!(read_to_eof(&mut s), b"GARBAGE\n\x00\xff");
    }
    assert_eq!(peer.connections(), 2);
    assert_eq!(
        *seen.lock().unwrap(),
        [b"stats\r\n".to_vec(), b"stats\r\n".to_vec()]
    );
    let thread = format!("fakepeer{}", peer.addr().port());
    assert_eq!(threads_named(&thread).len(), 1);
    drop(peer);
    assert!(eventually(|| threads_named(&thread).is_empty()));
}

#[test]
#[should_panic(expected = "FakePeer handler panicked: planted")]
fn fake_peer_reports_handler_panics_on_drop() {
    let peer = FakePeer::start(|_| panic!("planted"));
    let mut s = tcp(peer.addr());
    assert_eq!(read_to_eof(&mut s), b"");
    drop(peer);
}

#[test]
fn fixtures_can_be_shared_across_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Server>();
    send_sync::<FaultProxy>();
    send_sync::<FakePeer>();
    send_sync::<FaultPlan>();
    send_sync::<Address>();
}
