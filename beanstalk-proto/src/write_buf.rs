//! The outgoing byte queue that commands are encoded into.
//!
//! Command lines and small bodies are copied into one growing buffer, so a
//! pipeline of many commands goes out in one `write`. A large body given as
//! [`Bytes`] is queued by reference instead of copied, so the adapter can
//! hand line, body and CRLF to one vectored write (`writev`).

use alloc::collections::VecDeque;

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Bodies at least this long are queued by reference rather than copied.
pub const DEFAULT_ZERO_COPY_MIN: usize = 16 * 1024;

/// Bytes waiting to be written to the server.
///
/// Implements [`Buf`]: write [`Buf::chunk`] (or, with `std`,
/// [`Buf::chunks_vectored`]) and then [`Buf::advance`] by what the socket
/// took.
///
/// ```
/// use beanstalk_proto::{cmd::Delete, Connection, WriteBuf};
/// use bytes::Buf;
///
/// let mut conn = Connection::default();
/// let mut out = WriteBuf::new();
/// conn.send(&Delete::new(7), &mut out)?;
/// conn.send(&Delete::new(8), &mut out)?;
/// assert_eq!(out.chunk(), b"delete 7\r\ndelete 8\r\n");
/// out.advance(out.remaining());
/// assert!(out.is_empty());
/// # Ok::<(), beanstalk_proto::CommandError>(())
/// ```
#[derive(Debug)]
pub struct WriteBuf {
    /// Sealed chunks, in order, written before `tail`.
    sealed: VecDeque<Bytes>,
    /// Bytes in `sealed`, kept so `remaining` is O(1).
    sealed_len: usize,
    /// The chunk being appended to.
    tail: BytesMut,
    zero_copy_min: usize,
}

impl Default for WriteBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl WriteBuf {
    /// An empty buffer that copies bodies shorter than 16 KiB.
    pub fn new() -> Self {
        Self::with_zero_copy_min(DEFAULT_ZERO_COPY_MIN)
    }

    /// An empty buffer that queues `Bytes` bodies of at least `min` bytes by
    /// reference. `usize::MAX` makes every body a copy, so the whole buffer
    /// is always one contiguous chunk.
    pub fn with_zero_copy_min(min: usize) -> Self {
        Self {
            sealed: VecDeque::new(),
            sealed_len: 0,
            tail: BytesMut::with_capacity(4096),
            zero_copy_min: min,
        }
    }

    /// Whether nothing is waiting to be written.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// Number of separate chunks waiting (1 when everything was copied).
    #[inline]
    pub fn chunk_count(&self) -> usize {
        self.sealed.len() + usize::from(!self.tail.is_empty())
    }

    /// Takes the first chunk out as owned bytes, without copying them, or
    /// `None` when nothing waits.
    ///
    /// For a driver whose writes complete later, as with io_uring: the
    /// bytes handed to the kernel must stay put until the write is done,
    /// while the [`Connection`](crate::Connection) goes on queueing
    /// commands here, which may move what [`Buf::chunk`] borrows. Write
    /// the chunks in the order they come out, each whole (a short write
    /// leaves the rest of that chunk to the driver).
    ///
    /// ```
    /// use beanstalk_proto::{Connection, PutOptions, WriteBuf, cmd};
    ///
    /// let (mut conn, mut out) = (Connection::default(), WriteBuf::new());
    /// conn.send(&cmd::Put::new("hello", PutOptions::default())?, &mut out)?;
    /// let in_flight = out.take_chunk().expect("a command waits");
    /// conn.send(&cmd::Delete::new(1), &mut out)?; // `in_flight` stays as it was
    /// assert_eq!(&in_flight[..], b"put 1024 0 60 5\r\nhello\r\n");
    /// assert_eq!(&out.take_chunk().unwrap()[..], b"delete 1\r\n");
    /// assert_eq!(out.take_chunk(), None);
    /// # Ok::<(), beanstalk_proto::CommandError>(())
    /// ```
    pub fn take_chunk(&mut self) -> Option<Bytes> {
        if let Some(chunk) = self.sealed.pop_front() {
            self.sealed_len -= chunk.len();
            return Some(chunk);
        }
        // The tail keeps its spare room for the next commands.
        (!self.tail.is_empty()).then(|| self.tail.split().freeze())
    }

    /// Drops everything not yet written.
    pub fn clear(&mut self) {
        self.sealed.clear();
        self.sealed_len = 0;
        self.tail.clear();
    }

    // The encoders that call these are generic, so they are compiled in
    // the adapter's crate: without `#[inline]` each piece of a command
    // was a call across crates.
    #[inline]
    pub(crate) fn put_slice(&mut self, bytes: &[u8]) {
        self.tail.extend_from_slice(bytes);
    }

    /// Appends a body, by reference when it is large.
    #[inline]
    pub(crate) fn put_body(&mut self, body: &[u8], shared: Option<&Bytes>) {
        match shared {
            // An empty chunk would break `Buf`'s rule that `chunk` is non-empty while bytes remain.
            Some(bytes) if bytes.len() >= self.zero_copy_min && !bytes.is_empty() => {
                self.seal_tail();
                self.sealed_len += bytes.len();
                self.sealed.push_back(bytes.clone());
            }
            _ => self.tail.extend_from_slice(body),
        }
    }

    pub(crate) fn put_u64(&mut self, mut n: u64) {
        // Formats into a stack buffer from the right; 20 digits hold u64::MAX.
        let mut digits = [0u8; 20];
        let mut start = digits.len();
        loop {
            start -= 1;
            if let Some(slot) = digits.get_mut(start) {
                *slot = b'0' + (n % 10) as u8;
            }
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.tail
            .extend_from_slice(digits.get(start..).unwrap_or_default());
    }

    #[inline]
    pub(crate) fn put_crlf(&mut self) {
        self.tail.put_slice(b"\r\n");
    }

    /// Bytes appended to the tail so far; used to measure encoded lines.
    #[inline]
    pub(crate) fn tail_len(&self) -> usize {
        self.tail.len()
    }

    /// Moves every byte of `other` to the end of this buffer, in order,
    /// leaving `other` empty (its capacity kept). Bodies queued by
    /// reference move as they are; `other`'s copied bytes are copied once
    /// more.
    pub(crate) fn append(&mut self, other: &mut Self) {
        if other.is_empty() {
            return;
        }
        self.seal_tail();
        self.sealed_len += other.sealed_len;
        other.sealed_len = 0;
        self.sealed.append(&mut other.sealed);
        self.tail.extend_from_slice(&other.tail);
        other.tail.clear();
    }

    fn seal_tail(&mut self) {
        if !self.tail.is_empty() {
            let chunk = self.tail.split().freeze();
            self.sealed_len += chunk.len();
            self.sealed.push_back(chunk);
        }
    }
}

impl Buf for WriteBuf {
    #[inline]
    fn remaining(&self) -> usize {
        self.sealed_len + self.tail.len()
    }

    fn chunk(&self) -> &[u8] {
        match self.sealed.front() {
            Some(first) => first,
            None => &self.tail,
        }
    }

    fn advance(&mut self, mut cnt: usize) {
        while cnt > 0 {
            let Some(first) = self.sealed.front_mut() else {
                // Advancing past the end is the caller's bug; clamp instead of panicking.
                if cnt >= self.tail.len() {
                    // Everything written, the usual case: emptying is cheaper
                    // than moving the start, and keeps the capacity.
                    self.tail.clear();
                } else {
                    self.tail.advance(cnt);
                }
                return;
            };
            let n = cnt.min(first.len());
            first.advance(n);
            self.sealed_len -= n;
            cnt -= n;
            if first.is_empty() {
                self.sealed.pop_front();
            }
        }
    }

    #[cfg(feature = "std")]
    fn chunks_vectored<'a>(&'a self, dst: &mut [std::io::IoSlice<'a>]) -> usize {
        let chunks = self
            .sealed
            .iter()
            .map(|chunk| &chunk[..])
            .chain(core::iter::once(&self.tail[..]))
            .filter(|chunk| !chunk.is_empty());
        let mut filled = 0;
        for (slot, chunk) in dst.iter_mut().zip(chunks) {
            *slot = std::io::IoSlice::new(chunk);
            filled += 1;
        }
        filled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_numbers() {
        for n in [0, 1, 9, 10, 4_294_967_295, u64::MAX] {
            let mut buf = WriteBuf::new();
            buf.put_u64(n);
            assert_eq!(buf.chunk(), alloc::format!("{n}").as_bytes());
        }
    }

    #[test]
    fn append_keeps_the_order_of_both_buffers() {
        let body = Bytes::from(alloc::vec![7u8; DEFAULT_ZERO_COPY_MIN]);
        let mut first = WriteBuf::new();
        first.put_slice(b"one ");
        first.put_body(&body, Some(&body));
        first.put_slice(b" two");
        first.advance(2);
        let mut second = WriteBuf::new();
        second.put_slice(b" three ");
        second.put_body(&body, Some(&body));
        second.put_slice(b" four");
        first.append(&mut second);
        assert!(second.is_empty() && second.chunk_count() == 0);
        let mut expected = Vec::from(&b"e "[..]);
        expected.extend_from_slice(&body);
        expected.extend_from_slice(b" two three ");
        expected.extend_from_slice(&body);
        expected.extend_from_slice(b" four");
        assert_eq!(first.remaining(), expected.len());
        assert_eq!(first.copy_to_bytes(first.remaining()), expected);
        first.append(&mut WriteBuf::new());
        assert!(first.is_empty());
    }

    #[test]
    fn take_chunk_hands_out_every_chunk_in_order_without_copies() {
        let mut out = WriteBuf::with_zero_copy_min(4);
        let body = Bytes::from_static(b"large body");
        out.put_slice(b"put 0 0 1 10\r\n");
        out.put_body(&body, Some(&body));
        out.put_crlf();
        out.put_slice(b"delete 1\r\n");
        let mut taken = Vec::new();
        while let Some(chunk) = out.take_chunk() {
            taken.push(chunk);
        }
        assert_eq!(
            taken,
            [&b"put 0 0 1 10\r\n"[..], b"large body", b"\r\ndelete 1\r\n"]
        );
        assert_eq!(taken[1].as_ptr(), body.as_ptr(), "the body is not copied");
        assert!(out.is_empty());
        assert_eq!(out.chunk_count(), 0);
    }

    #[test]
    fn large_shared_bodies_are_not_copied() {
        let body = Bytes::from(alloc::vec![7u8; DEFAULT_ZERO_COPY_MIN]);
        let mut buf = WriteBuf::new();
        buf.put_slice(b"put 0 0 1 16384\r\n");
        buf.put_body(&body, Some(&body));
        buf.put_crlf();
        assert_eq!(buf.chunk_count(), 3);
        assert_eq!(buf.chunk().len(), 17);
        buf.advance(17);
        assert_eq!(
            buf.chunk().as_ptr(),
            body.as_ptr(),
            "body is queued by reference"
        );
        buf.advance(DEFAULT_ZERO_COPY_MIN + 1);
        assert_eq!(buf.chunk(), b"\n");
        buf.advance(1);
        assert!(buf.is_empty());
    }
}
