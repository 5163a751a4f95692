//! Moving bytes between a `futures-io` stream and the core's buffers, and
//! deadlines on the async-io timer. Shared by [`crate::Client`] and the
//! [`crate::SharedClient`] driver.

use std::future::Future;
use std::io;
use std::io::IoSlice;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_io::Timer;
use bytes::{Buf, BytesMut};
use futures_io::{AsyncRead, AsyncWrite};
use proto::read_low_water::ReadLowWater;
use proto::read_scratch::ReadScratch;
use proto::{Connection, WriteBuf};

/// The most one read asks for, while replies arrive faster than they are
/// read.
pub(crate) const MAX_READ: usize = 64 * 1024;

/// Sets a stream's receive low-water mark before a read
/// ([`proto::read_low_water::update_on`]): only the connect helpers'
/// sockets have one, since a caller's stream (TLS, a tunnel) may not be a
/// socket.
pub(crate) type UpdateLowWater<S> = fn(&S, &mut ReadLowWater, &Connection) -> io::Result<()>;

/// What was written to a stream and its peer has not taken yet, in the
/// socket's unit ([`proto::read_low_water::unsent_bytes`]): only the
/// connect helpers' sockets can tell.
pub(crate) type UnsentBytes<S> = fn(&S) -> Option<proto::reply_watch::Unsent>;

/// How many chunks of the write buffer go into one vectored write: a
/// pipeline of small commands is one chunk, a large body adds two.
const MAX_SLICES: usize = 8;

/// Polls one read from `io` through `scratch` (the core's initialised read
/// buffer) and appends what arrived to `rbuf`.
pub(crate) fn poll_read_into<S: AsyncRead + Unpin + ?Sized>(
    scratch: &mut ReadScratch,
    io: &mut S,
    cx: &mut Context<'_>,
    rbuf: &mut BytesMut,
) -> Poll<io::Result<usize>> {
    scratch.poll_read_into(rbuf, |room| Pin::new(io).poll_read(cx, room))
}

/// Polls until everything in `out` is written and the stream flushed
/// (a TLS stream holds bytes back until flushed). `out` is advanced inside
/// each poll, so a dropped caller leaves it exactly at what was written.
pub(crate) fn poll_send<S: AsyncWrite + Unpin + ?Sized>(
    io: &mut S,
    out: &mut WriteBuf,
    cx: &mut Context<'_>,
) -> Poll<io::Result<()>> {
    while out.has_remaining() {
        let polled = if out.chunk_count() == 1 {
            // One chunk (everything copied) is a plain write, which skips
            // the kernel's iovec import.
            Pin::new(&mut *io).poll_write(cx, out.chunk())
        } else {
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let count = out.chunks_vectored(&mut slices);
            let slices = slices.get(..count).unwrap_or_default();
            Pin::new(&mut *io).poll_write_vectored(cx, slices)
        };
        match polled {
            Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
            Poll::Ready(Ok(n)) => out.advance(n.min(out.remaining())),
            Poll::Ready(Err(error)) if error.kind() == io::ErrorKind::Interrupted => {}
            Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
            Poll::Pending => return Poll::Pending,
        }
    }
    Pin::new(io).poll_flush(cx)
}

/// The instant `timeout` from now; `None` (no deadline) if that is past
/// what `Instant` can hold, as for `Duration::MAX`.
pub(crate) fn deadline_after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// A timer kept armed from one wait to the next, so that waiting under a
/// deadline costs the reactor nothing in the common case.
///
/// Every new `async_io::Timer` that is polled registers with the reactor,
/// which wakes the reactor's thread (an eventfd write, a spurious
/// `epoll_wait` return, a read and a re-arm) and is removed again when the
/// reply comes: several syscalls per command. A watchdog instead stays
/// armed at an earlier command's deadline. When it fires before the current
/// deadline it is re-armed (once per read timeout at most, in steady
/// traffic); it is only moved when it would fire more than 1/32 of the
/// time left too late.
#[derive(Debug)]
pub(crate) struct Watchdog {
    timer: Timer,
    /// When the timer fires; `None` once it has fired or was never armed.
    armed: Option<Instant>,
}

impl Default for Watchdog {
    fn default() -> Self {
        Self {
            timer: Timer::never(),
            armed: None,
        }
    }
}

impl Clone for Watchdog {
    /// A new watchdog: a timer belongs to the task that polls it.
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl Watchdog {
    /// Runs `future` until `deadline`: `None` if the deadline came first.
    /// The future is polled before the timer, so a result that is ready
    /// wins over a deadline that has just passed.
    pub(crate) async fn until<F: Future>(
        &mut self,
        deadline: Option<Instant>,
        future: F,
    ) -> Option<F::Output> {
        let Some(deadline) = deadline else {
            return Some(future.await);
        };
        let mut future = std::pin::pin!(future);
        futures_lite::future::poll_fn(|cx| {
            if let Poll::Ready(output) = future.as_mut().poll(cx) {
                return Poll::Ready(Some(output));
            }
            self.poll_passed(cx, deadline).map(|()| None)
        })
        .await
    }

    /// Ready once `deadline` has passed; otherwise the timer is armed (no
    /// later than `deadline`, give or take 1/32 of the time left) to wake
    /// `cx`. Reads the clock only to move the timer or once it fired.
    pub(crate) fn poll_passed(&mut self, cx: &mut Context<'_>, deadline: Instant) -> Poll<()> {
        loop {
            let rearm = match self.armed {
                None => true,
                Some(at) if at > deadline => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Poll::Ready(());
                    }
                    // Past what the clock can hold: move it, to be safe.
                    deadline
                        .checked_add(deadline.saturating_duration_since(now) / 32)
                        .is_none_or(|late| at > late)
                }
                Some(_) => false,
            };
            if rearm {
                self.timer.set_at(deadline);
                self.armed = Some(deadline);
            }
            if Pin::new(&mut self.timer).poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.armed = None;
            if Instant::now() >= deadline {
                return Poll::Ready(());
            }
            // It fired for an earlier deadline: arm it again.
        }
    }
}

/// Runs `future` until `deadline`: `None` if the deadline came first. The
/// future is polled before the timer, so a result that is ready wins over a
/// deadline that has just passed.
#[cfg(any(feature = "smol", feature = "async-std"))]
pub(crate) async fn until<F: Future>(deadline: Option<Instant>, future: F) -> Option<F::Output> {
    match deadline {
        None => Some(future.await),
        Some(at) => {
            let expired = async {
                Timer::at(at).await;
                None
            };
            futures_lite::future::or(async { Some(future.await) }, expired).await
        }
    }
}
