//! The socket under a client: TCP or a Unix domain socket.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use proto::Endpoint;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
#[cfg(unix)]
use tokio::net::UnixStream;

/// How often an idle TCP connection is probed, so a dead peer is noticed
/// even while a `reserve` waits for hours.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);

/// A connected socket.
#[derive(Debug)]
pub(crate) enum Stream {
    Tcp(TcpStream),
    #[cfg(unix)]
    Unix(UnixStream),
}

impl Stream {
    /// Connects to `endpoint` within `timeout`.
    pub(crate) async fn connect(endpoint: &Endpoint, timeout: Duration) -> io::Result<Self> {
        let connecting = async {
            match endpoint {
                Endpoint::Tcp { host, port } => {
                    let stream = TcpStream::connect((host.as_str(), *port)).await?;
                    // NODELAY: every command is a small write that must leave at once.
                    stream.set_nodelay(true)?;
                    let keepalive = socket2::TcpKeepalive::new()
                        .with_time(KEEPALIVE_IDLE)
                        .with_interval(KEEPALIVE_IDLE);
                    socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive)?;
                    Ok(Self::Tcp(stream))
                }
                #[cfg(unix)]
                Endpoint::Unix(path) => UnixStream::connect(path).await.map(Self::Unix),
                #[cfg(not(unix))]
                Endpoint::Unix(_) => Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "Unix domain sockets need a Unix platform",
                )),
                _ => Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "unsupported endpoint",
                )),
            }
        };
        tokio::time::timeout(timeout, connecting)
            .await
            .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")))
    }
}

impl Stream {
    /// Sets the receive low-water mark: how many bytes must be in before
    /// a read wakes (see [`proto::read_low_water`]).
    pub(crate) fn set_read_low_water(&self, bytes: usize) -> io::Result<()> {
        match self {
            Self::Tcp(s) => proto::read_low_water::set_on(s, bytes),
            #[cfg(unix)]
            Self::Unix(s) => proto::read_low_water::set_on(s, bytes),
        }
    }

    /// Whether the peer has closed the connection (or reset it), as far as
    /// the runtime has seen: only when the socket is marked readable does
    /// this peek at it, so on a quiet, healthy connection it costs no
    /// syscall. Nothing is consumed.
    pub(crate) fn peer_closed(&self) -> bool {
        let mut byte = [std::mem::MaybeUninit::uninit(); 1];
        let peeked = match self {
            Self::Tcp(s) => s.try_io(tokio::io::Interest::READABLE, || {
                socket2::SockRef::from(s).peek(&mut byte)
            }),
            #[cfg(unix)]
            Self::Unix(s) => s.try_io(tokio::io::Interest::READABLE, || {
                socket2::SockRef::from(s).peek(&mut byte)
            }),
        };
        match peeked {
            Ok(0) => true,
            Ok(_) => false,
            Err(error) => error.kind() != io::ErrorKind::WouldBlock,
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            #[cfg(unix)]
            Self::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            #[cfg(unix)]
            Self::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            #[cfg(unix)]
            Self::Unix(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_flush(cx),
            #[cfg(unix)]
            Self::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            #[cfg(unix)]
            Self::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
