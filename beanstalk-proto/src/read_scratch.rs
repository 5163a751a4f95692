//! Reading replies through an initialised buffer, for drivers whose I/O
//! takes a `&mut [u8]` (`std::io::Read`, `futures-io`).
//!
//! Such a read needs initialised memory, and the spare capacity of the
//! `BytesMut` that replies are framed from is not: zero-filling it before
//! every read costs a memset of the whole read size per reply even when a
//! dozen bytes arrive. A scratch buffer is zeroed once, and each read then
//! costs one copy of the bytes actually read.

use alloc::vec::Vec;
use core::task::Poll;
use std::io;

use bytes::BytesMut;

use crate::read_size::ReadSize;

/// An initialised buffer for reads, and how much the next read asks for
/// (a [`ReadSize`]), so an idle client keeps a small footprint.
///
/// ```
/// use std::task::Poll;
/// use beanstalk_proto::read_scratch::ReadScratch;
///
/// let mut scratch = ReadScratch::new(64 * 1024);
/// let mut rbuf = bytes::BytesMut::new();
/// let mut socket: &[u8] = b"INSERTED 1\r\n";
/// let read = scratch.poll_read_into(&mut rbuf, |room| {
///     Poll::Ready(std::io::Read::read(&mut socket, room))
/// });
/// assert!(matches!(read, Poll::Ready(Ok(12))));
/// assert_eq!(&rbuf[..], b"INSERTED 1\r\n");
/// ```
#[derive(Debug, Clone)]
pub struct ReadScratch {
    buf: Vec<u8>,
    size: ReadSize,
}

impl ReadScratch {
    /// A scratch whose reads grow up to `max` bytes (at least
    /// [`MIN_READ`](crate::read_size::MIN_READ)).
    pub fn new(max: usize) -> Self {
        Self {
            buf: Vec::new(),
            size: ReadSize::new(max),
        }
    }

    /// Runs one `read` into the scratch and appends what arrived to
    /// `rbuf`. Every change happens inside the call, so a caller that
    /// stops polling can never lose or duplicate bytes. A read that claims
    /// more bytes than it was given room for is an `InvalidData` error.
    pub fn poll_read_into(
        &mut self,
        rbuf: &mut BytesMut,
        read: impl FnOnce(&mut [u8]) -> Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        let size = self.size.get();
        if self.buf.len() < size {
            self.buf.resize(size, 0);
        }
        let room = self.buf.get_mut(..size).unwrap_or_default();
        let n = match read(room) {
            Poll::Ready(Ok(n)) => n,
            other => return other,
        };
        let Some(read) = room.get(..n) else {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the stream reported reading more bytes than it was given room for",
            )));
        };
        rbuf.extend_from_slice(read);
        self.size.record(n);
        Poll::Ready(Ok(n))
    }
}
