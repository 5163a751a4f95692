//! The socket the connect helpers open: TCP or a Unix domain socket, from
//! smol or async-std.

/// The stream of a client made by the connect helpers (`connect`,
/// `connect_with`, ...): a TCP or Unix domain socket of smol (`smol`
/// feature) or async-std (`async-std` feature), with TCP_NODELAY and
/// keepalive set. It is the default type parameter of [`crate::Client`].
///
/// It has no public constructor: get one through the connect helpers, or
/// bring any other stream to [`crate::Client::from_stream`]. Without a
/// runtime feature it has no values at all.
#[derive(Debug)]
pub struct DefaultStream(Socket);

#[derive(Debug)]
enum Socket {
    #[cfg(feature = "smol")]
    SmolTcp(smol::net::TcpStream),
    #[cfg(all(feature = "smol", unix))]
    SmolUnix(smol::net::unix::UnixStream),
    #[cfg(feature = "async-std")]
    AsyncStdTcp(async_std::net::TcpStream),
    #[cfg(all(feature = "async-std", unix))]
    AsyncStdUnix(async_std::os::unix::net::UnixStream),
}

#[cfg(any(feature = "smol", feature = "async-std"))]
mod connect {
    use std::future::Future;
    use std::io;
    use std::net::SocketAddr;
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use std::time::Duration;

    use futures_io::{AsyncRead, AsyncWrite};
    use proto::read_low_water::ReadLowWater;
    use proto::{Connection, Endpoint};

    use super::{DefaultStream, Socket};
    use crate::io::{deadline_after, until};
    use crate::runtime::Runtime;

    /// How often an idle TCP connection is probed, so a dead peer is
    /// noticed even while a `reserve` waits for hours.
    const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);

    impl DefaultStream {
        /// Connects to `endpoint` within `timeout`, with the sockets of the
        /// runtime the call is made from (see the crate docs): each address
        /// a host name resolves to gets the whole timeout, tried in turn.
        pub(crate) async fn connect(endpoint: &Endpoint, timeout: Duration) -> io::Result<Self> {
            let runtime = Runtime::current();
            match endpoint {
                Endpoint::Tcp { host, port } => {
                    let resolving = resolve(runtime, host, *port);
                    let addresses = within(timeout, "resolving the host", resolving).await?;
                    connect_tcp(runtime, addresses, timeout)
                        .await?
                        .map(Self)
                        .ok_or_else(|| {
                            io::Error::new(
                                io::ErrorKind::NotFound,
                                format!("{host} resolved to no address"),
                            )
                        })
                }
                #[cfg(unix)]
                Endpoint::Unix(path) => within(timeout, "connect", unix(runtime, path))
                    .await
                    .map(Self),
                _ => Err(endpoint.unsupported_here()),
            }
        }
    }

    /// `future`'s result, or a `TimedOut` error naming `what` once
    /// `timeout` has passed.
    async fn within<T>(
        timeout: Duration,
        what: &str,
        future: impl Future<Output = io::Result<T>>,
    ) -> io::Result<T> {
        until(deadline_after(timeout), future)
            .await
            .unwrap_or_else(|| {
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{what} timed out"),
                ))
            })
    }

    async fn resolve(runtime: Runtime, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        match runtime {
            #[cfg(feature = "smol")]
            Runtime::Smol => smol::net::resolve((host, port)).await,
            #[cfg(feature = "async-std")]
            Runtime::AsyncStd => {
                use async_std::net::ToSocketAddrs;
                Ok((host, port).to_socket_addrs().await?.collect())
            }
        }
    }

    /// Connects to the first of `addresses` that answers, giving each the
    /// whole `timeout` as the blocking client does: one that drops packets
    /// (a dead host of several in DNS) must not use up the time of the
    /// next. `None` when there is no address; otherwise the last error.
    pub(super) async fn connect_tcp(
        runtime: Runtime,
        addresses: impl IntoIterator<Item = SocketAddr>,
        timeout: Duration,
    ) -> io::Result<Option<Socket>> {
        let mut last_error = None;
        for address in addresses {
            match within(timeout, "connect", tcp(runtime, address)).await {
                Ok(socket) => return Ok(Some(socket)),
                Err(error) => last_error = Some(error),
            }
        }
        last_error.map_or(Ok(None), Err)
    }

    async fn tcp(runtime: Runtime, address: SocketAddr) -> io::Result<Socket> {
        match runtime {
            #[cfg(feature = "smol")]
            Runtime::Smol => {
                let stream = smol::net::TcpStream::connect(address).await?;
                tune_tcp(&stream)?;
                Ok(Socket::SmolTcp(stream))
            }
            #[cfg(feature = "async-std")]
            Runtime::AsyncStd => {
                let stream = async_std::net::TcpStream::connect(address).await?;
                tune_tcp(&stream)?;
                Ok(Socket::AsyncStdTcp(stream))
            }
        }
    }

    #[cfg(unix)]
    async fn unix(runtime: Runtime, path: &str) -> io::Result<Socket> {
        match runtime {
            #[cfg(feature = "smol")]
            Runtime::Smol => smol::net::unix::UnixStream::connect(path)
                .await
                .map(Socket::SmolUnix),
            #[cfg(feature = "async-std")]
            Runtime::AsyncStd => async_std::os::unix::net::UnixStream::connect(path)
                .await
                .map(Socket::AsyncStdUnix),
        }
    }

    /// NODELAY, because every command is a small write that must leave at
    /// once; keepalive, because a `reserve` may wait on an idle connection
    /// for hours and a vanished peer must still be noticed.
    #[cfg(unix)]
    fn tune_tcp<T: std::os::fd::AsFd>(stream: &T) -> io::Result<()> {
        set_options(&socket2::SockRef::from(stream))
    }

    #[cfg(windows)]
    fn tune_tcp<T: std::os::windows::io::AsSocket>(stream: &T) -> io::Result<()> {
        set_options(&socket2::SockRef::from(stream))
    }

    #[cfg(any(unix, windows))]
    fn set_options(socket: &socket2::SockRef<'_>) -> io::Result<()> {
        socket.set_nodelay(true)?;
        let keepalive = socket2::TcpKeepalive::new()
            .with_time(KEEPALIVE_IDLE)
            .with_interval(KEEPALIVE_IDLE);
        socket.set_tcp_keepalive(&keepalive)
    }

    /// Forwards a call to whichever socket `$socket` holds.
    macro_rules! each_socket {
        ($socket:expr, $s:ident => $body:expr) => {
            match $socket {
                #[cfg(feature = "smol")]
                Socket::SmolTcp($s) => $body,
                #[cfg(all(feature = "smol", unix))]
                Socket::SmolUnix($s) => $body,
                #[cfg(feature = "async-std")]
                Socket::AsyncStdTcp($s) => $body,
                #[cfg(all(feature = "async-std", unix))]
                Socket::AsyncStdUnix($s) => $body,
            }
        };
    }

    impl DefaultStream {
        /// Whether the peer has closed the connection (or reset it): a
        /// peek of one byte, which does not block (the runtimes' sockets
        /// are non-blocking) and consumes nothing. One syscall, so callers
        /// only ask after a quiet spell.
        #[cfg(unix)]
        pub(crate) fn peer_closed(&self) -> bool {
            let mut byte = [std::mem::MaybeUninit::uninit(); 1];
            let peeked = each_socket!(&self.0, s => socket2::SockRef::from(s).peek(&mut byte));
            match peeked {
                Ok(0) => true,
                Ok(_) => false,
                Err(error) => error.kind() != io::ErrorKind::WouldBlock,
            }
        }

        /// Sets the receive low-water mark the commands in flight on
        /// `conn` call for: how many bytes must be in before a read wakes
        /// (see [`proto::read_low_water::update_on`]).
        pub(crate) fn update_read_low_water(
            &self,
            mark: &mut ReadLowWater,
            conn: &Connection,
        ) -> io::Result<()> {
            each_socket!(&self.0, s => proto::read_low_water::update_on(s, mark, conn))
        }

        /// What was written and the peer has not taken yet, in the
        /// socket's unit ([`proto::read_low_water::unsent_bytes`]).
        pub(crate) fn unsent_bytes(&self) -> Option<proto::reply_watch::Unsent> {
            each_socket!(&self.0, s => proto::read_low_water::unsent_bytes(s))
        }

        /// Asks for a send buffer of `bytes`, so tests can make writes
        /// block early.
        #[cfg(all(test, feature = "smol"))]
        pub(crate) fn set_send_buffer_size(&self, bytes: usize) -> io::Result<()> {
            each_socket!(&self.0, s => socket2::SockRef::from(s).set_send_buffer_size(bytes))
        }

        /// Without Unix sockets' peek, the break is found by the command.
        #[cfg(not(unix))]
        pub(crate) fn peer_closed(&self) -> bool {
            false
        }
    }

    impl AsyncRead for DefaultStream {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            each_socket!(&mut self.get_mut().0, s => Pin::new(s).poll_read(cx, buf))
        }

        fn poll_read_vectored(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bufs: &mut [io::IoSliceMut<'_>],
        ) -> Poll<io::Result<usize>> {
            each_socket!(&mut self.get_mut().0, s => Pin::new(s).poll_read_vectored(cx, bufs))
        }
    }

    impl AsyncWrite for DefaultStream {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            each_socket!(&mut self.get_mut().0, s => Pin::new(s).poll_write(cx, buf))
        }

        fn poll_write_vectored(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bufs: &[io::IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            each_socket!(&mut self.get_mut().0, s => Pin::new(s).poll_write_vectored(cx, bufs))
        }

        fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            each_socket!(&mut self.get_mut().0, s => Pin::new(s).poll_flush(cx))
        }

        fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            each_socket!(&mut self.get_mut().0, s => Pin::new(s).poll_close(cx))
        }
    }
}

#[cfg(all(test, feature = "smol"))]
mod tests {
    use std::time::{Duration, Instant};

    use beanstalk_test_support::{FullBacklogListener, Server};

    use super::connect::connect_tcp;
    use crate::runtime::Runtime;

    /// A host whose first address gets no answer and whose second is a
    /// server: the connect reaches the server, each address having had
    /// the whole timeout.
    #[test]
    fn an_address_that_drops_packets_does_not_use_up_the_next_ones_time() {
        let dead = FullBacklogListener::tcp();
        let server = Server::start();
        let addresses = [dead.tcp_addr().unwrap(), server.tcp_addr()];
        let timeout = Duration::from_millis(300);
        smol::block_on(async {
            let started = Instant::now();
            let socket = connect_tcp(Runtime::Smol, addresses, timeout)
                .await
                .unwrap();
            assert!(socket.is_some());
            let took = started.elapsed();
            assert!(
                took >= timeout && took < Duration::from_secs(2),
                "took {took:?}"
            );
            let dead_only = [dead.tcp_addr().unwrap()];
            assert!(
                connect_tcp(Runtime::Smol, dead_only, timeout)
                    .await
                    .is_err()
            );
            assert!(
                connect_tcp(Runtime::Smol, [], timeout)
                    .await
                    .unwrap()
                    .is_none()
            );
        });
    }
}
