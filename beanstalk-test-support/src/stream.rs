//! One connected socket, TCP or Unix, behind a single type.
//!
//! The server helpers and the proxy both need to reach an [`Address`] that may
//! be either kind; this keeps the `match` in one place.

use std::io::{self, BufRead, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use crate::Address;

/// A connected TCP or Unix stream.
#[derive(Debug)]
pub(crate) enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    /// Connects to `addr`.
    pub(crate) fn connect(addr: &Address) -> io::Result<Self> {
        match addr {
            Address::Tcp(a) => TcpStream::connect(a).map(Self::Tcp),
            Address::Unix(p) => UnixStream::connect(p).map(Self::Unix),
        }
    }

    /// A second handle to the same socket, so two threads can read and write it.
    pub(crate) fn try_clone(&self) -> io::Result<Self> {
        match self {
            Self::Tcp(s) => s.try_clone().map(Self::Tcp),
            Self::Unix(s) => s.try_clone().map(Self::Unix),
        }
    }

    /// Shuts the socket down; this affects every clone, which is what wakes a
    /// thread blocked in `read` on another handle.
    pub(crate) fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Self::Tcp(s) => s.shutdown(how),
            Self::Unix(s) => s.shutdown(how),
        }
    }

    /// Disables Nagle on TCP so that small writes leave as separate segments;
    /// Unix sockets have no such buffering, so this is a no-op there.
    pub(crate) fn set_nodelay(&self) -> io::Result<()> {
        match self {
            Self::Tcp(s) => s.set_nodelay(true),
            Self::Unix(_) => Ok(()),
        }
    }

    /// Sets both the read and write timeout.
    pub(crate) fn set_timeouts(&self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            Self::Tcp(s) => {
                s.set_read_timeout(timeout)?;
                s.set_write_timeout(timeout)
            }
            Self::Unix(s) => {
                s.set_read_timeout(timeout)?;
                s.set_write_timeout(timeout)
            }
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Tcp(s) => s.read(buf),
            Self::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Tcp(s) => s.write(buf),
            Self::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Tcp(s) => s.flush(),
            Self::Unix(s) => s.flush(),
        }
    }
}

/// Reads one complete beanstalkd reply: the line up to CRLF and, for replies
/// that announce a body (`OK <n>`, `FOUND <id> <n>`, `RESERVED <id> <n>`), the
/// `n` body bytes plus their CRLF.
///
/// Only CRLF ends a line, as on the server; a bare LF is kept as data.
pub(crate) fn read_reply(r: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut reply = Vec::new();
    loop {
        if r.read_until(b'\n', &mut reply)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "connection closed after {:?}",
                    String::from_utf8_lossy(&reply)
                ),
            ));
        }
        if reply.ends_with(b"\r\n") {
            break;
        }
    }
    let line = &reply[..reply.len() - 2];
    let mut words = line.split(|&b| b == b' ');
    let has_body = matches!(words.next(), Some(b"OK" | b"FOUND" | b"RESERVED"));
    if has_body {
        let len = line
            .rsplit(|&b| b == b' ')
            .next()
            .and_then(|w| std::str::from_utf8(w).ok())
            .and_then(|w| w.parse::<usize>().ok())
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("no body length in {:?}", String::from_utf8_lossy(line)),
                )
            })?;
        let start = reply.len();
        reply.resize(start + len + 2, 0);
        r.read_exact(&mut reply[start..])?;
    }
    Ok(reply)
}
