//! The socket under a client: TCP or a Unix domain socket.

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
#[cfg(unix)]
use std::os::unix::net::UnixStream;
use std::time::Duration;

use proto::read_low_water::ReadLowWater;
use proto::{Connection, Endpoint};

/// How often an idle TCP connection is probed, so a dead peer or a dropped
/// NAT entry is noticed even while a `reserve` waits for hours.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);

/// A connected socket.
#[derive(Debug)]
pub(crate) enum Stream {
    Tcp(TcpStream),
    #[cfg(unix)]
    Unix(UnixStream),
}

impl Stream {
    /// Connects to `endpoint`, trying each resolved address in turn.
    pub(crate) fn connect(endpoint: &Endpoint, timeout: Duration) -> io::Result<Self> {
        match endpoint {
            Endpoint::Tcp { host, port } => {
                let mut last_error = None;
                for addr in (host.as_str(), *port).to_socket_addrs()? {
                    match TcpStream::connect_timeout(&addr, timeout) {
                        Ok(stream) => {
                            configure_tcp(&stream)?;
                            return Ok(Self::Tcp(stream));
                        }
                        Err(error) => last_error = Some(error),
                    }
                }
                Err(last_error.unwrap_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("{host} resolved to no address"),
                    )
                }))
            }
            #[cfg(unix)]
            Endpoint::Unix(path) => connect_unix(path, timeout).map(Self::Unix),
            _ => Err(endpoint.unsupported_here()),
        }
    }

    pub(crate) fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            Self::Tcp(s) => s.set_read_timeout(timeout),
            #[cfg(unix)]
            Self::Unix(s) => s.set_read_timeout(timeout),
        }
    }

    /// Sets the receive low-water mark the commands in flight on `conn`
    /// call for: how many bytes must be in before a read returns (see
    /// [`proto::read_low_water::update_on`]).
    pub(crate) fn update_read_low_water(
        &self,
        mark: &mut ReadLowWater,
        conn: &Connection,
    ) -> io::Result<()> {
        match self {
            Self::Tcp(s) => proto::read_low_water::update_on(s, mark, conn),
            #[cfg(unix)]
            Self::Unix(s) => proto::read_low_water::update_on(s, mark, conn),
        }
    }

    /// What was written and the peer has not taken yet, in the socket's
    /// unit ([`proto::read_low_water::unsent_bytes`]).
    pub(crate) fn unsent_bytes(&self) -> Option<proto::reply_watch::Unsent> {
        match self {
            Self::Tcp(s) => proto::read_low_water::unsent_bytes(s),
            #[cfg(unix)]
            Self::Unix(s) => proto::read_low_water::unsent_bytes(s),
        }
    }

    pub(crate) fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            Self::Tcp(s) => s.set_write_timeout(timeout),
            #[cfg(unix)]
            Self::Unix(s) => s.set_write_timeout(timeout),
        }
    }

    /// A second handle on the same socket.
    pub(crate) fn try_clone(&self) -> io::Result<Self> {
        match self {
            Self::Tcp(s) => s.try_clone().map(Self::Tcp),
            #[cfg(unix)]
            Self::Unix(s) => s.try_clone().map(Self::Unix),
        }
    }

    /// Closes both directions; errors are ignored because the connection is
    /// being given up anyway.
    pub(crate) fn shutdown(&self) {
        let _ = match self {
            Self::Tcp(s) => s.shutdown(Shutdown::Both),
            #[cfg(unix)]
            Self::Unix(s) => s.shutdown(Shutdown::Both),
        };
    }
}

impl Stream {
    /// Whether the peer has closed the connection (or reset it), seen
    /// without blocking and without consuming anything: a peek of one byte
    /// on the socket made non-blocking for the moment. Three syscalls, so
    /// callers only ask after a quiet spell. If the socket cannot be made
    /// blocking again it is reported closed, so it is replaced.
    pub(crate) fn peer_closed(&self) -> bool {
        let socket = match self {
            Self::Tcp(s) => socket2::SockRef::from(s),
            #[cfg(unix)]
            Self::Unix(s) => socket2::SockRef::from(s),
        };
        if socket.set_nonblocking(true).is_err() {
            return false;
        }
        let mut byte = [std::mem::MaybeUninit::uninit(); 1];
        let closed = match socket.peek(&mut byte) {
            Ok(0) => true,
            Ok(_) => false,
            Err(error) => error.kind() != io::ErrorKind::WouldBlock,
        };
        socket.set_nonblocking(false).is_err() || closed
    }
}

impl Stream {
    /// Waits until the socket is readable (or has an error or hang-up for
    /// the next read to report), at most `timeout`: `Ok(false)` when the
    /// time ran out or a signal interrupted the wait.
    ///
    /// A socket timeout (`SO_RCVTIMEO`) is counted in scheduler ticks, so
    /// a 1 ms one runs out after up to two ticks (5-10 ms at 250 Hz);
    /// poll(2) sleeps on a high-resolution timer, rounded up to the next
    /// millisecond.
    #[cfg(unix)]
    pub(crate) fn wait_readable(&self, timeout: Duration) -> io::Result<bool> {
        use std::os::fd::{AsFd, AsRawFd};
        let fd = match self {
            Self::Tcp(s) => s.as_fd().as_raw_fd(),
            Self::Unix(s) => s.as_fd().as_raw_fd(),
        };
        let mut pollfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // Rounded up, so the wait never ends before `timeout`.
        let millis = timeout.as_nanos().div_ceil(1_000_000);
        let millis = libc::c_int::try_from(millis).unwrap_or(libc::c_int::MAX);
        // SAFETY: `pollfd` is one valid, initialised entry and the count
        // says one; the descriptor stays open while `self` is borrowed.
        match unsafe { libc::poll(&raw mut pollfd, 1, millis) } {
            -1 => {
                let error = io::Error::last_os_error();
                if error.kind() == io::ErrorKind::Interrupted {
                    Ok(false)
                } else {
                    Err(error)
                }
            }
            0 => Ok(false),
            _ => Ok(true),
        }
    }
}

/// Connects to the Unix socket at `path` within `timeout`. A blocking
/// `connect` to a listener whose backlog is full (a server stopped or
/// swamped) waits until it accepts, for ever if it never does; the socket's
/// send timeout bounds that wait (Linux, and other systems' `connect`,
/// give up with `EAGAIN` when it runs out). The caller sets the real send
/// timeout afterwards.
#[cfg(unix)]
fn connect_unix(path: &str, timeout: Duration) -> io::Result<UnixStream> {
    use socket2::{Domain, SockAddr, Socket, Type};
    let address = SockAddr::unix(path)?;
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    socket.set_write_timeout(Some(timeout))?;
    match socket.connect(&address) {
        Ok(()) => Ok(UnixStream::from(std::os::fd::OwnedFd::from(socket))),
        Err(error) if error.kind() == io::ErrorKind::WouldBlock => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "connect to {path} timed out after {timeout:?}: the server accepts no connection"
            ),
        )),
        Err(error) => Err(error),
    }
}

/// TCP_NODELAY, because every command is a small write that must leave at
/// once; keepalive, so a silent peer is eventually detected.
fn configure_tcp(stream: &TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(KEEPALIVE_IDLE)
        .with_interval(KEEPALIVE_IDLE);
    socket2::SockRef::from(stream).set_tcp_keepalive(&keepalive)
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Tcp(s) => s.read(buf),
            #[cfg(unix)]
            Self::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Tcp(s) => s.write(buf),
            #[cfg(unix)]
            Self::Unix(s) => s.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Self::Tcp(s) => s.write_vectored(bufs),
            #[cfg(unix)]
            Self::Unix(s) => s.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
