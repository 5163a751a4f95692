//! A listener that accepts no connection and whose backlog is full: a
//! server that is stopped or swamped. A TCP connect to it gets no answer
//! (the kernel drops the SYN); a Unix-socket connect waits (or, without
//! blocking, fails with `EAGAIN`).

use std::net::SocketAddr;

use socket2::{Domain, SockAddr, Socket, Type};
use tempfile::TempDir;

/// Holds the listener and the connections that fill its backlog; they
/// close when it is dropped.
#[derive(Debug)]
pub struct FullBacklogListener {
    url: String,
    tcp: Option<SocketAddr>,
    _listener: Socket,
    _fillers: Vec<Socket>,
    _dir: Option<TempDir>,
}

impl FullBacklogListener {
    /// On a free loopback TCP port.
    ///
    /// # Panics
    /// If the socket cannot be set up.
    pub fn tcp() -> Self {
        let loopback: SocketAddr = "127.0.0.1:0".parse().expect("address");
        Self::start(Domain::IPV4, &loopback.into(), None)
    }

    /// On a Unix socket in a temporary directory of its own.
    ///
    /// # Panics
    /// If the socket or the directory cannot be set up.
    pub fn unix() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("beanstalk-full-")
            .tempdir()
            .expect("temp dir");
        let path = dir.path().join("full.sock");
        let address = SockAddr::unix(&path).expect("socket path");
        Self::start(Domain::UNIX, &address, Some(dir))
    }

    fn start(domain: Domain, address: &SockAddr, dir: Option<TempDir>) -> Self {
        let listener = Socket::new(domain, Type::STREAM, None).expect("socket");
        listener.bind(address).expect("bind");
        listener.listen(0).expect("listen");
        let bound = listener.local_addr().expect("bound address");
        // Connections that fill the backlog, none of them accepted.
        let fillers = (0..8)
            .map(|_| {
                let filler = Socket::new(domain, Type::STREAM, None).expect("socket");
                filler.set_nonblocking(true).expect("non-blocking");
                let _ = filler.connect(&bound);
                filler
            })
            .collect();
        let tcp = bound.as_socket();
        let url = match (tcp, bound.as_pathname()) {
            (Some(tcp), _) => format!("beanstalk://{tcp}"),
            (None, Some(path)) => format!("unix://{}", path.display()),
            (None, None) => panic!("an unnamed socket"),
        };
        Self {
            url,
            tcp,
            _listener: listener,
            _fillers: fillers,
            _dir: dir,
        }
    }

    /// The address for a client: `beanstalk://127.0.0.1:PORT` or
    /// `unix:///path`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The TCP address, for a TCP listener.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp
    }
}
