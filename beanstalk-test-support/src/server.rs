//! A private beanstalkd process per test.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, mpsc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::stream::{Stream, read_reply};

/// How long a start or restart may take before the fixture gives up. beanstalkd
/// is normally ready in a few milliseconds; the margin is for a loaded CI box.
const START_TIMEOUT: Duration = Duration::from_secs(5);

/// Pause between connection attempts while waiting for `listen()`.
const CONNECT_RETRY: Duration = Duration::from_millis(3);

/// Read/write timeout for the helper connections, so a wrong command in a test
/// (say a blocking `reserve`) fails the test instead of hanging it.
const HELPER_IO_TIMEOUT: Duration = Duration::from_secs(5);

/// How much of the server's output is kept for panic messages. `-V` logs every
/// connection, so an unbounded buffer would grow with long tests.
const LOG_CAP: usize = 64 * 1024;

const NOT_FOUND_HINT: &str = "beanstalkd not found: install it with `sudo apt-get install -y beanstalkd` (Debian/Ubuntu) or set BEANSTALKD_BIN";

/// Where a beanstalkd (or a proxy in front of one) listens.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Address {
    /// A TCP socket address, always on loopback for the fixtures.
    Tcp(SocketAddr),
    /// The path of a Unix domain socket.
    Unix(PathBuf),
}

impl Address {
    /// The address as a URL: `beanstalk://127.0.0.1:PORT` or `unix:///path`.
    pub fn url(&self) -> String {
        match self {
            Self::Tcp(a) => format!("beanstalk://{a}"),
            Self::Unix(_) => self.to_string(),
        }
    }
}

impl fmt::Display for Address {
    /// `127.0.0.1:PORT` for TCP, `unix:///path` for a Unix socket.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp(a) => write!(f, "{a}"),
            // Socket paths are absolute (they live in a temp dir), so this
            // yields the three slashes of an empty-authority URL.
            Self::Unix(p) => write!(f, "unix://{}", p.display()),
        }
    }
}

/// Which binlog directory the server uses.
#[derive(Debug, Clone)]
enum Binlog {
    Dir(PathBuf),
    Temp,
}

/// Options for a [`Server`]; created by [`Server::builder`].
#[derive(Debug, Clone, Default)]
#[must_use = "a ServerBuilder does nothing until .start() is called"]
pub struct ServerBuilder {
    unix: bool,
    binlog: Option<Binlog>,
    max_job_size: Option<u32>,
    fsync_never: bool,
    args: Vec<OsString>,
    binary: Option<PathBuf>,
}

impl ServerBuilder {
    /// Listens on `unix:<tempdir>/beanstalkd.sock` instead of TCP loopback. The
    /// directory belongs to the [`Server`] and is removed when it is dropped.
    pub fn unix_socket(mut self) -> Self {
        self.unix = true;
        self
    }

    /// Writes the binlog to `dir` (`-b DIR`). The directory is created if
    /// needed and left in place afterwards; it is the caller's.
    pub fn binlog(mut self, dir: impl AsRef<Path>) -> Self {
        self.binlog = Some(Binlog::Dir(dir.as_ref().to_path_buf()));
        self
    }

    /// Writes the binlog to a fresh temporary directory owned by the [`Server`]
    /// (kept across [`Server::restart`], removed on drop).
    pub fn binlog_temp(mut self) -> Self {
        self.binlog = Some(Binlog::Temp);
        self
    }

    /// Sets the maximum job size in bytes (`-z BYTES`).
    pub fn max_job_size(mut self, bytes: u32) -> Self {
        self.max_job_size = Some(bytes);
        self
    }

    /// Never fsync the binlog (`-F`); makes binlog tests faster, and a
    /// `kill -9` still keeps everything the kernel has received.
    pub fn fsync_never(mut self) -> Self {
        self.fsync_never = true;
        self
    }

    /// Passes any other command-line argument through, e.g. `.arg("-s").arg("8192")`.
    /// Do not pass `-l` or `-p`: the fixture chooses the address itself.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_os_string());
        self
    }

    /// Uses this beanstalkd binary, overriding `BEANSTALKD_BIN` and `PATH`.
    ///
    /// Mostly useful for the kit's own tests: changing the environment would
    /// affect every test running in parallel in the same process.
    pub fn binary(mut self, path: impl AsRef<Path>) -> Self {
        self.binary = Some(path.as_ref().to_path_buf());
        self
    }

    /// Starts beanstalkd and returns once it accepts connections.
    ///
    /// # Panics
    /// If beanstalkd cannot be found (with instructions on how to install it),
    /// exits early, or is not accepting connections within 5 seconds. The panic
    /// message includes the server's output. This is a test fixture: a missing
    /// server fails the test, it never skips it.
    pub fn start(self) -> Server {
        let bin = find_binary(self.binary.as_deref());

        let binlog_temp = match self.binlog {
            Some(Binlog::Temp) => Some(temp_dir("beanstalkd-binlog-")),
            _ => None,
        };
        let binlog_dir = match &self.binlog {
            Some(Binlog::Dir(dir)) => {
                std::fs::create_dir_all(dir)
                    .unwrap_or_else(|e| panic!("cannot create binlog dir {}: {e}", dir.display()));
                Some(dir.clone())
            }
            Some(Binlog::Temp) => binlog_temp.as_ref().map(|d| d.path().to_path_buf()),
            None => None,
        };

        let mut args = Vec::new();
        if let Some(dir) = &binlog_dir {
            args.push(OsString::from("-b"));
            args.push(dir.clone().into_os_string());
        }
        if let Some(bytes) = self.max_job_size {
            args.push(OsString::from("-z"));
            args.push(OsString::from(bytes.to_string()));
        }
        if self.fsync_never {
            args.push(OsString::from("-F"));
        }
        args.extend(self.args);

        let (socket_dir, listen) = if self.unix {
            let dir = temp_dir("beanstalkd-sock-");
            let path = dir.path().join("beanstalkd.sock");
            (Some(dir), Listen::Unix(path))
        } else {
            (None, Listen::TcpAnyPort)
        };

        let running = launch(&bin, &listen, &args).unwrap_or_else(|f| f.panic("start"));
        Server {
            bin,
            args,
            addr: running.addr.clone(),
            binlog_dir,
            pid: running.child.id(),
            log: running.log,
            child: Mutex::new(Some(running.child.into_inner())),
            pipes: running.pipes,
            _binlog_temp: binlog_temp,
            _socket_dir: socket_dir,
        }
    }
}

/// A beanstalkd process owned by one test.
///
/// It listens on a free loopback port (or a private Unix socket), so tests can
/// run in parallel. Dropping it kills the process with SIGKILL, reaps it and
/// removes its temporary directories, also while a failed test unwinds.
#[derive(Debug)]
pub struct Server {
    bin: PathBuf,
    /// Everything except the listen address, replayed verbatim by `restart`.
    args: Vec<OsString>,
    addr: Address,
    binlog_dir: Option<PathBuf>,
    pid: u32,
    log: Log,
    /// `None` once stopped. A Mutex so `is_running` and `drain` can take `&self`.
    child: Mutex<Option<Child>>,
    /// Threads that drain the child's stdout and stderr.
    pipes: Vec<JoinHandle<()>>,
    // Declared last so they are removed after the process is gone.
    _binlog_temp: Option<TempDir>,
    _socket_dir: Option<TempDir>,
}

impl Server {
    /// Options for a server; see [`ServerBuilder`].
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// Starts a server with default options on TCP loopback.
    ///
    /// # Panics
    /// As [`ServerBuilder::start`].
    pub fn start() -> Self {
        Self::builder().start()
    }

    /// Where the server listens. Stays the same across [`Server::restart`].
    pub fn addr(&self) -> Address {
        self.addr.clone()
    }

    /// The TCP address.
    ///
    /// # Panics
    /// If the server listens on a Unix socket.
    pub fn tcp_addr(&self) -> SocketAddr {
        match &self.addr {
            Address::Tcp(a) => *a,
            Address::Unix(p) => panic!(
                "tcp_addr() on a server listening on the Unix socket {}",
                p.display()
            ),
        }
    }

    /// The Unix socket path, or `None` for a TCP server.
    pub fn unix_path(&self) -> Option<&Path> {
        match &self.addr {
            Address::Tcp(_) => None,
            Address::Unix(p) => Some(p),
        }
    }

    /// `beanstalk://127.0.0.1:PORT` or `unix:///path`.
    pub fn url(&self) -> String {
        self.addr.url()
    }

    /// The process id of the current (or, once stopped, the last) process.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The binlog directory, if the server was started with one.
    pub fn binlog_dir(&self) -> Option<&Path> {
        self.binlog_dir.as_deref()
    }

    /// Whether the process is alive. A server that crashed on its own counts
    /// as not running (it is reaped here).
    pub fn is_running(&self) -> bool {
        let mut child = self.lock_child();
        match child.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => true,
            Some(_) => {
                *child = None;
                false
            }
            None => false,
        }
    }

    /// Kills the server with SIGKILL, as a crash or OOM kill would, and waits
    /// for it to exit. Does nothing if it is not running.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self
            .child
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            // Errors mean it already exited; wait() below reaps it either way.
            let _ = child.kill();
            let _ = child.wait();
        }
        self.join_pipes();
    }

    /// Stops the server with SIGTERM and waits for it to exit, falling back to
    /// SIGKILL after 5 seconds. Does nothing if it is not running.
    pub fn stop(&mut self) {
        self.signal(libc::SIGTERM);
        if let Some(mut child) = self
            .child
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            let deadline = Instant::now() + START_TIMEOUT;
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(2));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        self.join_pipes();
    }

    /// Kills the server (SIGKILL) if it is running, then starts it again with
    /// the same arguments, the same binlog directory and the same address, so
    /// a client can reconnect to the URL it already has.
    ///
    /// # Panics
    /// If the new process does not come up within 5 seconds. For TCP the old
    /// port is retried for that long in case it is briefly unavailable.
    pub fn restart(&mut self) {
        self.kill9();
        let listen = match &self.addr {
            Address::Tcp(a) => Listen::TcpPort(a.port()),
            Address::Unix(p) => Listen::Unix(p.clone()),
        };
        let deadline = Instant::now() + START_TIMEOUT;
        let running = loop {
            match launch(&self.bin, &listen, &self.args) {
                Ok(running) => break running,
                // Someone else may hold the port for a moment (another test's
                // ephemeral socket); that only resolves by waiting.
                Err(f) if f.addr_in_use() && Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(20));
                }
                Err(f) => f.panic("restart"),
            }
        };
        assert_eq!(
            running.addr, self.addr,
            "beanstalkd restarted on a different address"
        );
        self.pid = running.child.id();
        self.log = running.log;
        *self.child.get_mut().unwrap_or_else(PoisonError::into_inner) =
            Some(running.child.into_inner());
        self.pipes = running.pipes;
    }

    /// Puts the server into drain mode (SIGUSR1): from then on every `put`
    /// answers `DRAINING`, while reserve and delete keep working.
    ///
    /// Returns once `stats` reports `draining: true`, so the next command a
    /// test sends is guaranteed to see drain mode.
    ///
    /// # Panics
    /// If the server is not running or does not enter drain mode within 5 s.
    pub fn drain(&self) {
        assert!(
            self.signal(libc::SIGUSR1),
            "drain(): beanstalkd (pid {}) is not running",
            self.pid
        );
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if self.stats().get("draining").map(String::as_str) == Some("true") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "beanstalkd did not report draining: true after SIGUSR1"
            );
            thread::sleep(Duration::from_millis(2));
        }
    }

    /// Sends `stats` over a fresh connection and returns every `key: value`
    /// pair of the reply, values as text.
    ///
    /// # Panics
    /// If the server cannot be reached or the reply is not `OK <n>`.
    pub fn stats(&self) -> BTreeMap<String, String> {
        let reply = self.raw_command(b"stats\r\n");
        let text = String::from_utf8_lossy(&reply);
        assert!(text.starts_with("OK "), "stats answered {text:?}");
        text.lines()
            .skip(1)
            .filter_map(|line| line.split_once(": "))
            .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
            .collect()
    }

    /// The numeric value of one `stats` key (such as `cmd-put` or
    /// `current-jobs-ready`), read over a fresh connection that is independent
    /// of the client under test. Useful to prove that a client sent nothing.
    ///
    /// Note that the helper connection itself is counted in
    /// `total-connections` and `cmd-stats`.
    ///
    /// # Panics
    /// If the key is missing or its value is not an unsigned integer.
    pub fn stats_counter(&self, key: &str) -> u64 {
        let stats = self.stats();
        let value = stats
            .get(key)
            .unwrap_or_else(|| panic!("stats has no key {key:?}; keys: {:?}", stats.keys()));
        value
            .parse()
            .unwrap_or_else(|_| panic!("stats key {key:?} is not a number: {value:?}"))
    }

    /// Sends `bytes` as-is over a fresh connection and returns exactly one
    /// reply: the line with its CRLF, plus the body and its CRLF when the reply
    /// is `OK`, `FOUND` or `RESERVED`.
    ///
    /// `bytes` must include the CRLF, and for `put` the body too:
    /// `raw_command(b"put 0 0 60 5\r\nhello\r\n")`. Each call is a new
    /// connection, so `use`/`watch` do not carry over between calls. A command
    /// that blocks (plain `reserve`) panics after 5 s; use
    /// `reserve-with-timeout 0`.
    ///
    /// # Panics
    /// On any I/O error or timeout.
    pub fn raw_command(&self, bytes: &[u8]) -> Vec<u8> {
        let what = String::from_utf8_lossy(bytes);
        let mut stream = Stream::connect(&self.addr)
            .unwrap_or_else(|e| panic!("raw_command {what:?}: connect to {}: {e}", self.addr));
        stream
            .set_timeouts(Some(HELPER_IO_TIMEOUT))
            .unwrap_or_else(|e| panic!("raw_command: set timeout: {e}"));
        stream
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("raw_command {what:?}: write: {e}"));
        read_reply(&mut BufReader::new(stream))
            .unwrap_or_else(|e| panic!("raw_command {what:?}: read reply: {e}"))
    }

    /// Sends `sig` to the child if it is still running; returns whether it was.
    fn signal(&self, sig: libc::c_int) -> bool {
        let mut guard = self.lock_child();
        let Some(child) = guard.as_mut() else {
            return false;
        };
        if !matches!(child.try_wait(), Ok(None)) {
            return false;
        }
        let pid = libc::pid_t::try_from(child.id()).expect("pid fits in pid_t");
        // SAFETY: kill(2) only takes two integers and touches none of our
        // memory. The pid is that of our own child, which has not been reaped
        // (try_wait just saw it running, and nothing else can wait on it while
        // we hold the lock), so the kernel cannot have recycled the pid for an
        // unrelated process: at worst it is a zombie and the signal is ignored.
        let rc = unsafe { libc::kill(pid, sig) };
        rc == 0
    }

    fn lock_child(&self) -> MutexGuard<'_, Option<Child>> {
        // A panic while holding the lock cannot leave the Option inconsistent.
        self.child.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for the output-draining threads, which end at EOF once the
    /// process is gone.
    fn join_pipes(&mut self) {
        for handle in self.pipes.drain(..) {
            let _ = handle.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// How the next process should listen.
enum Listen {
    /// `-l 127.0.0.1 -p 0`: the kernel picks a free port.
    TcpAnyPort,
    /// `-l 127.0.0.1 -p PORT`: the port of the previous run.
    TcpPort(u16),
    /// `-l unix:PATH`.
    Unix(PathBuf),
}

impl Listen {
    fn args(&self) -> Vec<OsString> {
        match self {
            Self::TcpAnyPort => vec!["-l".into(), "127.0.0.1".into(), "-p".into(), "0".into()],
            Self::TcpPort(port) => vec![
                "-l".into(),
                "127.0.0.1".into(),
                "-p".into(),
                port.to_string().into(),
            ],
            Self::Unix(path) => {
                let mut l = OsString::from("unix:");
                l.push(path);
                vec!["-l".into(), l]
            }
        }
    }
}

/// A freshly started process that accepts connections.
struct Running {
    child: ChildGuard,
    addr: Address,
    log: Log,
    pipes: Vec<JoinHandle<()>>,
}

/// A child process that is killed and reaped if dropped before it is handed
/// to a [`Server`], so that a panic during start-up (a failed check in
/// `restart`, a thread that cannot be spawned) does not leak a beanstalkd.
struct ChildGuard(Option<Child>);

impl ChildGuard {
    fn get(&mut self) -> &mut Child {
        self.0
            .as_mut()
            .expect("ChildGuard holds a child until into_inner")
    }

    fn id(&self) -> u32 {
        self.0.as_ref().map_or(0, Child::id)
    }

    /// Hands the child over; from here on its owner must kill it.
    fn into_inner(mut self) -> Child {
        self.0
            .take()
            .expect("ChildGuard holds a child until into_inner")
    }

    /// Kills and reaps the child, returning how it ended.
    fn reap(mut self) -> std::io::Result<ExitStatus> {
        let child = self.get();
        let _ = child.kill();
        child.wait()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Why a launch failed, with the server's output for the panic message.
struct LaunchFailure {
    reason: String,
    log: Log,
}

impl LaunchFailure {
    fn addr_in_use(&self) -> bool {
        self.log.text().contains("Address already in use")
    }

    fn panic(self, what: &str) -> ! {
        panic!(
            "beanstalkd {what} failed: {}\n--- beanstalkd output ---\n{}",
            self.reason,
            self.log.text()
        )
    }
}

/// The last [`LOG_CAP`] bytes of the child's stdout and stderr, shared with
/// the threads that drain them.
#[derive(Debug, Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Log {
    fn push(&self, line: &[u8]) {
        let mut buf = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        buf.extend_from_slice(line);
        if buf.len() > LOG_CAP {
            let excess = buf.len() - LOG_CAP;
            buf.drain(..excess);
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }
}

/// Spawns beanstalkd and waits until it accepts connections.
///
/// beanstalkd prints `bind FD ADDR` on stdout (with `-V`) once bind() has
/// succeeded but *before* listen(), so after that line connections can still be
/// refused for a moment; hence the connect loop that follows.
fn launch(bin: &Path, listen: &Listen, args: &[OsString]) -> Result<Running, LaunchFailure> {
    let deadline = Instant::now() + START_TIMEOUT;
    let mut child = ChildGuard(Some(
        Command::new(bin)
            .args(listen.args())
            .arg("-V")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    panic!("{NOT_FOUND_HINT} (tried {}: {e})", bin.display())
                }
                panic!("cannot run {}: {e}", bin.display())
            }),
    ));

    let log = Log::default();
    let (bound_tx, bound_rx) = mpsc::channel::<String>();
    let stdout = child.get().stdout.take().expect("stdout is piped");
    let stderr = child.get().stderr.take().expect("stderr is piped");
    // Both pipes are drained for the whole life of the process: -V logs every
    // connection, and a full pipe would block the server mid-test.
    let pipes = vec![
        spawn_drain("beanstalkd-stdout", stdout, log.clone(), Some(bound_tx)),
        spawn_drain("beanstalkd-stderr", stderr, log.clone(), None),
    ];

    let fail = |child: ChildGuard, pipes: Vec<JoinHandle<()>>, reason: String| {
        let status = child.reap();
        // The pipes reach EOF now that the process is gone; joining them makes
        // sure its last words are in the log.
        for p in pipes {
            let _ = p.join();
        }
        let reason = match status {
            Ok(status) => format!("{reason} ({})", describe(status)),
            Err(_) => reason,
        };
        LaunchFailure {
            reason,
            log: log.clone(),
        }
    };

    let remaining = deadline.saturating_duration_since(Instant::now());
    let bound = match bound_rx.recv_timeout(remaining) {
        Ok(bound) => bound,
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            return Err(fail(child, pipes, "exited before binding".into()));
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            return Err(fail(child, pipes, "no `bind` line within 5 s".into()));
        }
    };

    let addr = match listen {
        Listen::Unix(path) => Address::Unix(path.clone()),
        Listen::TcpAnyPort | Listen::TcpPort(_) => {
            // "bind 3 127.0.0.1:37893": the address is the last word.
            let word = bound.rsplit(' ').next().unwrap_or_default();
            match word.parse() {
                Ok(a) => Address::Tcp(a),
                Err(_) => {
                    return Err(fail(
                        child,
                        pipes,
                        format!("cannot parse bind line {bound:?}"),
                    ));
                }
            }
        }
    };

    loop {
        if Stream::connect(&addr).is_ok() {
            break;
        }
        if !matches!(child.get().try_wait(), Ok(None)) {
            return Err(fail(child, pipes, "exited while starting".into()));
        }
        if Instant::now() >= deadline {
            return Err(fail(
                child,
                pipes,
                format!("{addr} not accepting connections within 5 s"),
            ));
        }
        thread::sleep(CONNECT_RETRY);
    }

    Ok(Running {
        child,
        addr,
        log,
        pipes,
    })
}

/// Copies a pipe into the log line by line until EOF, reporting the first
/// `bind ` line through `bound`.
fn spawn_drain(
    name: &str,
    pipe: impl Read + Send + 'static,
    log: Log,
    mut bound: Option<mpsc::Sender<String>>,
) -> JoinHandle<()> {
    thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let mut reader = BufReader::new(pipe);
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                log.push(&line);
                if let Some(rest) = line.strip_prefix(b"bind ") {
                    if let Some(tx) = bound.take() {
                        let _ = tx.send(String::from_utf8_lossy(rest).trim().to_owned());
                    }
                }
            }
        })
        .expect("spawn pipe-draining thread")
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => status.to_string(),
    }
}

/// The beanstalkd binary: the explicit one, else `BEANSTALKD_BIN`, else the
/// first `beanstalkd` on `PATH`.
fn find_binary(explicit: Option<&Path>) -> PathBuf {
    let from_env = std::env::var_os("BEANSTALKD_BIN").filter(|v| !v.is_empty());
    if let Some(path) = explicit
        .map(Path::to_path_buf)
        .or(from_env.map(PathBuf::from))
    {
        assert!(
            path.is_file(),
            "{NOT_FOUND_HINT} (no such file: {})",
            path.display()
        );
        return path;
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("beanstalkd"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{NOT_FOUND_HINT} (searched PATH)"))
}

fn temp_dir(prefix: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .unwrap_or_else(|e| panic!("cannot create a temporary directory: {e}"))
}
