//! Knowing when a `futures-io` stream may be read, which the trait does
//! not say: reads that would find nothing are skipped.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

use bytes::BytesMut;
use futures_io::AsyncRead;
use proto::read_scratch::ReadScratch;

/// Reads only when the stream may have something: a read that found
/// nothing registered this tracker's own waker, and until that waker fires
/// another read would find nothing too.
///
/// `futures-io` tells a reader nothing about readiness except by reading.
/// A [`crate::SharedClient`]'s driver is woken far more often by callers
/// (one wake per command they queue) than by the socket, so a read on
/// every wake would mostly find nothing: on async-io each such read is a
/// `recv` that fails with `EAGAIN` and, on loopback, contends for the
/// socket's lock with the server's replies arriving on the other CPU.
/// tokio's own streams keep this readiness themselves; this does the same
/// for any `futures-io` stream, relying only on the contract of
/// `poll_read`: a `Pending` read wakes the waker it was given once the
/// stream may be read again, unless a later read was polled with another
/// (only the last waker is sure to be woken), so every read of the stream
/// goes through here.
#[derive(Debug)]
pub(crate) struct ReadReadiness {
    signal: Arc<ReadSignal>,
    /// Wakes `signal`: the waker every read is polled with.
    waker: Waker,
    /// The task's waker last handed to `signal`, to spot a change without
    /// taking its lock.
    task: Option<Waker>,
    /// A read returned `Pending` and `signal` has not fired since.
    waiting: bool,
    /// The last read returned less than it had room for.
    short: bool,
}

/// Set by the stream when it may be read again; passes the wake on to the
/// task that reads.
#[derive(Debug, Default)]
struct ReadSignal {
    fired: AtomicBool,
    task: Mutex<Option<Waker>>,
}

impl Wake for ReadSignal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.fired.store(true, Ordering::Release);
        let task = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(task) = task {
            task.wake();
        }
    }
}

impl Default for ReadReadiness {
    fn default() -> Self {
        let signal = Arc::new(ReadSignal::default());
        Self {
            waker: Waker::from(Arc::clone(&signal)),
            signal,
            task: None,
            waiting: false,
            short: false,
        }
    }
}

impl ReadReadiness {
    /// Reads from `io` into `rbuf` through `scratch`, as
    /// [`crate::io::poll_read_into`] does, unless a read already found
    /// nothing and the stream has not woken it since: then `Pending` at
    /// once, with `cx`'s task to be woken when the stream does.
    pub(crate) fn poll_read_into<S: AsyncRead + Unpin + ?Sized>(
        &mut self,
        scratch: &mut ReadScratch,
        io: &mut S,
        cx: &mut Context<'_>,
        rbuf: &mut BytesMut,
    ) -> Poll<io::Result<usize>> {
        // The task first, so a wake from here on reaches it.
        if !self.task.as_ref().is_some_and(|t| t.will_wake(cx.waker())) {
            let task = cx.waker().clone();
            *self
                .signal
                .task
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(task.clone());
            self.task = Some(task);
        }
        // Cleared before reading: a wake after this point is for a read
        // from now on, so it is not lost.
        let fired = self.signal.fired.swap(false, Ordering::AcqRel);
        if self.waiting && !fired {
            return Poll::Pending;
        }
        let mut room = 0;
        let polled = scratch.poll_read_into(rbuf, |buf| {
            room = buf.len();
            Pin::new(io).poll_read(&mut Context::from_waker(&self.waker), buf)
        });
        self.waiting = polled.is_pending();
        self.short = matches!(polled, Poll::Ready(Ok(n)) if n > 0 && n < room);
        polled
    }

    /// Reads from `io` as [`ReadReadiness::poll_read_into`] does, but even
    /// when no wake came since a read found nothing: for a read past the
    /// receive low-water mark, whose bytes wake nobody. The read is polled
    /// with this tracker's waker like any other, so the stream goes on
    /// waking the task. (A stream keeps only the waker of the last read
    /// polled: one polled with another waker, even once, leaves it to
    /// wake that one; smol's sockets then never wake the tracker again.)
    pub(crate) fn poll_read_now<S: AsyncRead + Unpin + ?Sized>(
        &mut self,
        scratch: &mut ReadScratch,
        io: &mut S,
        cx: &mut Context<'_>,
        rbuf: &mut BytesMut,
    ) -> Poll<io::Result<usize>> {
        self.waiting = false;
        self.poll_read_into(scratch, io, cx, rbuf)
    }

    /// Whether the last read returned bytes but less than it had room for:
    /// most likely all there was, so reading again at once would most
    /// likely find nothing.
    pub(crate) fn last_read_was_short(&self) -> bool {
        self.short
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::atomic::AtomicUsize;

    use super::*;
    use crate::io::MAX_READ;

    /// What the scripted stream does at its next read.
    enum Step {
        /// Nothing to read: keep the waker, as a socket registers it.
        Nothing,
        /// This many bytes.
        Bytes(usize),
        /// As many bytes as there is room for.
        Fill,
    }

    /// A stream that reads as scripted and counts its reads.
    #[derive(Default)]
    struct Scripted {
        steps: VecDeque<Step>,
        reads: usize,
        waker: Option<Waker>,
    }

    impl AsyncRead for Scripted {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            self.reads += 1;
            match self.steps.pop_front() {
                None | Some(Step::Nothing) => {
                    self.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
                Some(Step::Bytes(n)) => Poll::Ready(Ok(n.min(buf.len()))),
                Some(Step::Fill) => Poll::Ready(Ok(buf.len())),
            }
        }
    }

    /// A task's waker that counts its wakes.
    #[derive(Default)]
    struct Task(AtomicUsize);

    impl Wake for Task {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn task() -> (Arc<Task>, Waker) {
        let task = Arc::new(Task::default());
        (Arc::clone(&task), Waker::from(task))
    }

    struct Reader {
        readiness: ReadReadiness,
        scratch: ReadScratch,
        rbuf: BytesMut,
        stream: Scripted,
    }

    impl Reader {
        fn new(steps: impl IntoIterator<Item = Step>) -> Self {
            Self {
                readiness: ReadReadiness::default(),
                scratch: ReadScratch::new(MAX_READ),
                rbuf: BytesMut::new(),
                stream: Scripted {
                    steps: steps.into_iter().collect(),
                    ..Scripted::default()
                },
            }
        }

        fn poll(&mut self, task: &Waker) -> Poll<io::Result<usize>> {
            self.readiness.poll_read_into(
                &mut self.scratch,
                &mut self.stream,
                &mut Context::from_waker(task),
                &mut self.rbuf,
            )
        }

        fn poll_now(&mut self, task: &Waker) -> Poll<io::Result<usize>> {
            self.readiness.poll_read_now(
                &mut self.scratch,
                &mut self.stream,
                &mut Context::from_waker(task),
                &mut self.rbuf,
            )
        }
    }

    #[test]
    fn a_read_that_found_nothing_is_not_repeated_until_the_stream_wakes_it() {
        let mut reader = Reader::new([Step::Nothing, Step::Bytes(7)]);
        let (task, waker) = task();
        assert!(reader.poll(&waker).is_pending());
        assert!(reader.poll(&waker).is_pending());
        assert!(reader.poll(&waker).is_pending());
        assert_eq!(
            reader.stream.reads, 1,
            "polls before the wake must not read"
        );

        reader
            .stream
            .waker
            .take()
            .expect("the read registered a waker")
            .wake();
        assert_eq!(
            task.0.load(Ordering::SeqCst),
            1,
            "the stream's wake reaches the task"
        );
        assert!(matches!(reader.poll(&waker), Poll::Ready(Ok(7))));
        assert_eq!(reader.stream.reads, 2);
        assert_eq!(reader.rbuf.len(), 7);
    }

    #[test]
    fn after_bytes_every_poll_reads_until_one_finds_nothing() {
        let mut reader = Reader::new([Step::Bytes(3), Step::Bytes(4), Step::Nothing]);
        let (_, waker) = task();
        assert!(matches!(reader.poll(&waker), Poll::Ready(Ok(3))));
        assert!(matches!(reader.poll(&waker), Poll::Ready(Ok(4))));
        assert!(reader.poll(&waker).is_pending());
        assert!(reader.poll(&waker).is_pending());
        assert_eq!(reader.stream.reads, 3);
    }

    #[test]
    fn the_wake_goes_to_the_task_that_polled_last() {
        let mut reader = Reader::new([Step::Nothing]);
        let (first, first_waker) = task();
        let (second, second_waker) = task();
        assert!(reader.poll(&first_waker).is_pending());
        assert!(reader.poll(&second_waker).is_pending());
        reader.stream.waker.take().expect("registered").wake();
        assert_eq!(first.0.load(Ordering::SeqCst), 0);
        assert_eq!(second.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_wake_allows_one_read() {
        // Woken between two polls: the next poll reads, whatever it finds.
        let mut reader = Reader::new([Step::Nothing, Step::Nothing, Step::Bytes(2)]);
        let (_, waker) = task();
        assert!(reader.poll(&waker).is_pending());
        reader.stream.waker.take().expect("registered").wake();
        // A spurious wake: the read finds nothing and registers again.
        assert!(reader.poll(&waker).is_pending());
        assert!(reader.poll(&waker).is_pending());
        assert_eq!(reader.stream.reads, 2, "a wake allows one read, not more");
        reader.stream.waker.take().expect("registered again").wake();
        assert!(matches!(reader.poll(&waker), Poll::Ready(Ok(2))));
    }

    /// A read now reads although no wake came, and leaves the stream
    /// waking the tracker: the scripted stream, like smol's sockets, keeps
    /// only the waker of the last read, so bytes that come after a read
    /// polled with any other waker would wake nobody.
    #[test]
    fn a_read_now_reads_at_once_and_the_stream_still_wakes_the_task() {
        let mut reader = Reader::new([Step::Nothing, Step::Nothing, Step::Bytes(12)]);
        let (task, waker) = task();
        assert!(reader.poll(&waker).is_pending());
        assert!(reader.poll(&waker).is_pending());
        assert!(reader.poll_now(&waker).is_pending());
        assert_eq!(reader.stream.reads, 2, "read without a wake");
        assert!(reader.poll(&waker).is_pending());
        assert_eq!(reader.stream.reads, 2, "and waits for a wake again");

        reader.stream.waker.take().expect("registered").wake();
        assert_eq!(
            task.0.load(Ordering::SeqCst),
            1,
            "the stream's wake reaches the task"
        );
        assert!(matches!(reader.poll(&waker), Poll::Ready(Ok(12))));
    }

    #[test]
    fn a_read_is_short_when_it_leaves_room() {
        let mut reader = Reader::new([Step::Bytes(5), Step::Fill, Step::Nothing]);
        let (_, waker) = task();
        assert!(matches!(reader.poll(&waker), Poll::Ready(Ok(5))));
        assert!(reader.readiness.last_read_was_short());
        assert!(matches!(reader.poll(&waker), Poll::Ready(Ok(n)) if n > 5));
        assert!(!reader.readiness.last_read_was_short());
        assert!(reader.poll(&waker).is_pending());
        assert!(!reader.readiness.last_read_was_short());
    }
}
