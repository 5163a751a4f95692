//! The socket under a client: TCP or a Unix domain socket.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use proto::read_low_water::ReadLowWater;
use proto::{Connection, Endpoint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
#[cfg(unix)]
use tokio::net::UnixStream;
use tokio::net::tcp;
#[cfg(unix)]
use tokio::net::unix;

/// Evaluates `$body` with `$s` bound to whichever socket (or side of one)
/// `$value`, a [`Stream`], [`ReadSide`] or [`WriteSide`], holds.
macro_rules! each_socket {
    ($value:expr, $s:ident => $body:expr) => {
        match $value {
            Self::Tcp($s) => $body,
            #[cfg(unix)]
            Self::Unix($s) => $body,
        }
    };
}

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
    /// Connects to `endpoint` within `timeout`: each address a host name
    /// resolves to gets the whole timeout, tried in turn.
    pub(crate) async fn connect(endpoint: &Endpoint, timeout: Duration) -> io::Result<Self> {
        match endpoint {
            Endpoint::Tcp { host, port } => {
                let resolving = tokio::net::lookup_host((host.as_str(), *port));
                let addresses = tokio::time::timeout(timeout, resolving)
                    .await
                    .map_err(|_| timed_out("resolving the host"))??;
                let stream = connect_tcp(addresses, timeout).await?.ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("{host} resolved to no address"),
                    )
                })?;
                // NODELAY: every command is a small write that must leave at once.
                stream.set_nodelay(true)?;
                let keepalive = socket2::TcpKeepalive::new()
                    .with_time(KEEPALIVE_IDLE)
                    .with_interval(KEEPALIVE_IDLE);
                socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive)?;
                Ok(Self::Tcp(stream))
            }
            #[cfg(unix)]
            Endpoint::Unix(path) => tokio::time::timeout(timeout, UnixStream::connect(path))
                .await
                .map_err(|_| timed_out("connect"))?
                .map(Self::Unix),
            _ => Err(endpoint.unsupported_here()),
        }
    }
}

/// Connects to the first of `addresses` that answers, giving each the
/// whole `timeout` as the blocking client does: one that drops packets
/// (a dead host of several in DNS) must not use up the time of the next.
/// `None` when there is no address; otherwise the last error.
async fn connect_tcp(
    addresses: impl IntoIterator<Item = std::net::SocketAddr>,
    timeout: Duration,
) -> io::Result<Option<TcpStream>> {
    let mut last_error = None;
    for address in addresses {
        match tokio::time::timeout(timeout, TcpStream::connect(address)).await {
            Ok(Ok(stream)) => return Ok(Some(stream)),
            Ok(Err(error)) => last_error = Some(error),
            Err(_) => last_error = Some(timed_out("connect")),
        }
    }
    last_error.map_or(Ok(None), Err)
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, format!("{what} timed out"))
}

impl Stream {
    /// Sets the receive low-water mark the commands in flight on `conn`
    /// call for: how many bytes must be in before a read wakes (see
    /// [`proto::read_low_water::update_on`]).
    pub(crate) fn update_read_low_water(
        &self,
        mark: &mut ReadLowWater,
        conn: &Connection,
    ) -> io::Result<()> {
        each_socket!(self, s => proto::read_low_water::update_on(s, mark, conn))
    }

    /// Whether the peer has closed the connection (or reset it), as far as
    /// the runtime has seen: only when the socket is marked readable does
    /// this peek at it, so on a quiet, healthy connection it costs no
    /// syscall. Nothing is consumed.
    pub(crate) fn peer_closed(&self) -> bool {
        let mut byte = [std::mem::MaybeUninit::uninit(); 1];
        let peeked = each_socket!(self, s => s.try_io(tokio::io::Interest::READABLE, || {
            socket2::SockRef::from(s).peek(&mut byte)
        }));
        match peeked {
            Ok(0) => true,
            Ok(_) => false,
            Err(error) => error.kind() != io::ErrorKind::WouldBlock,
        }
    }
}

/// Reads what `socket` holds now into `rbuf`, without waiting, whatever
/// its receive low-water mark: the runtime reports the socket readable
/// only once the mark is reached, and a reply that came alone, fewer bytes
/// than the mark, would otherwise sit unread until its deadline failed the
/// call (see [`proto::read_low_water`]). `Ok(0)` is the end of the stream;
/// nothing held is [`io::ErrorKind::WouldBlock`]. The runtime's sockets do
/// not block, so the read goes past the runtime's own readiness, which
/// only tells when to wait again.
#[cfg(unix)]
fn read_held<S: std::os::fd::AsFd>(socket: &S, rbuf: &mut BytesMut) -> io::Result<usize> {
    use std::io::Read;
    let socket = socket2::SockRef::from(socket);
    let mut chunk = [0; 4096];
    let mut total = 0;
    loop {
        match (&*socket).read(&mut chunk) {
            Ok(n) => {
                let read = chunk.get(..n).unwrap_or_default();
                rbuf.extend_from_slice(read);
                total += n;
                if n < chunk.len() {
                    return Ok(total);
                }
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) if error.kind() == io::ErrorKind::WouldBlock && total > 0 => {
                return Ok(total);
            }
            Err(error) => return Err(error),
        }
    }
}

/// Without Unix descriptors no mark is set (see
/// [`proto::read_low_water::update_on`]), so the runtime saw all there is.
#[cfg(not(unix))]
fn read_held<S>(_socket: &S, _rbuf: &mut BytesMut) -> io::Result<usize> {
    Err(io::ErrorKind::WouldBlock.into())
}

impl Stream {
    /// What was written and the peer has not taken yet, in the socket's
    /// unit ([`proto::read_low_water::unsent_bytes`]).
    pub(crate) fn unsent_bytes(&self) -> Option<proto::reply_watch::Unsent> {
        each_socket!(self, s => proto::read_low_water::unsent_bytes(s))
    }

    /// [`read_held`] on this socket.
    pub(crate) fn read_held(&self, rbuf: &mut BytesMut) -> io::Result<usize> {
        each_socket!(self, s => read_held(s, rbuf))
    }
}

/// The reading side of a [`Stream`] borrowed by [`Stream::split`].
#[derive(Debug)]
pub(crate) enum ReadSide<'a> {
    Tcp(tcp::ReadHalf<'a>),
    #[cfg(unix)]
    Unix(unix::ReadHalf<'a>),
}

/// The writing side of a [`Stream`] borrowed by [`Stream::split`].
#[derive(Debug)]
pub(crate) enum WriteSide<'a> {
    Tcp(tcp::WriteHalf<'a>),
    #[cfg(unix)]
    Unix(unix::WriteHalf<'a>),
}

impl Stream {
    /// Borrows the two sides apart, so one task can wait on a read and a
    /// write at once. Unlike `tokio::io::split`, no lock is taken per
    /// poll, and the reading side still reaches the socket's options.
    pub(crate) fn split(&mut self) -> (ReadSide<'_>, WriteSide<'_>) {
        match self {
            Self::Tcp(s) => {
                let (read, write) = s.split();
                (ReadSide::Tcp(read), WriteSide::Tcp(write))
            }
            #[cfg(unix)]
            Self::Unix(s) => {
                let (read, write) = s.split();
                (ReadSide::Unix(read), WriteSide::Unix(write))
            }
        }
    }
}

impl ReadSide<'_> {
    /// [`Stream::unsent_bytes`] of the socket this side reads.
    pub(crate) fn unsent_bytes(&self) -> Option<proto::reply_watch::Unsent> {
        each_socket!(self, s => proto::read_low_water::unsent_bytes(s.as_ref()))
    }

    /// [`read_held`] on the socket this side reads.
    pub(crate) fn read_held(&self, rbuf: &mut BytesMut) -> io::Result<usize> {
        each_socket!(self, s => read_held(s.as_ref(), rbuf))
    }

    /// [`Stream::update_read_low_water`] for the socket this side reads.
    pub(crate) fn update_read_low_water(
        &self,
        mark: &mut ReadLowWater,
        conn: &Connection,
    ) -> io::Result<()> {
        each_socket!(self, s => proto::read_low_water::update_on(s.as_ref(), mark, conn))
    }
}

/// `AsyncRead` for a type that holds a readable socket or side of one.
macro_rules! forward_read {
    ($type:ty) => {
        impl AsyncRead for $type {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                each_socket!(self.get_mut(), s => Pin::new(s).poll_read(cx, buf))
            }
        }
    };
}

/// `AsyncWrite` for a type that holds a writable socket or side of one.
macro_rules! forward_write {
    ($type:ty) => {
        impl AsyncWrite for $type {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                each_socket!(self.get_mut(), s => Pin::new(s).poll_write(cx, buf))
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[io::IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                each_socket!(self.get_mut(), s => Pin::new(s).poll_write_vectored(cx, bufs))
            }

            fn is_write_vectored(&self) -> bool {
                true
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                each_socket!(self.get_mut(), s => Pin::new(s).poll_flush(cx))
            }

            fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                each_socket!(self.get_mut(), s => Pin::new(s).poll_shutdown(cx))
            }
        }
    };
}

forward_read!(Stream);
forward_read!(ReadSide<'_>);
forward_write!(Stream);
forward_write!(WriteSide<'_>);

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use beanstalk_test_support::{FullBacklogListener, Server};

    /// A host whose first address gets no answer and whose second is a
    /// server: the connect reaches the server, each address having had
    /// the whole timeout.
    #[tokio::test]
    async fn an_address_that_drops_packets_does_not_use_up_the_next_ones_time() {
        let dead = FullBacklogListener::tcp();
        let server = Server::start();
        let addresses = [dead.tcp_addr().unwrap(), server.tcp_addr()];
        let timeout = Duration::from_millis(300);
        let started = Instant::now();
        let stream = super::connect_tcp(addresses, timeout).await.unwrap();
        assert!(stream.is_some());
        let took = started.elapsed();
        assert!(
            took >= timeout && took < Duration::from_secs(2),
            "took {took:?}"
        );
        assert!(
            super::connect_tcp([dead.tcp_addr().unwrap()], timeout)
                .await
                .is_err()
        );
        assert!(super::connect_tcp([], timeout).await.unwrap().is_none());
    }
}
