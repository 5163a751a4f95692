//! A global allocator that counts large allocations and the bytes live,
//! for tests about how a driver's buffers are allocated and kept.
//!
//! Every allocation in the test binary counts, whichever thread makes it,
//! so a binary that installs it should hold a single test.
//!
//! ```ignore
//! use beanstalk_test_support::large_allocations::{LargeAllocationCounter, large_allocations};
//!
//! #[global_allocator]
//! static COUNTER: LargeAllocationCounter = LargeAllocationCounter;
//!
//! let before = large_allocations();
//! let buffer = vec![0u8; 1 << 20];
//! assert_eq!(large_allocations() - before, 1);
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};

use proto::{AsyncCommands, Error};

use crate::Server;

/// Allocations of this many bytes or more are counted.
pub const LARGE: usize = 32 * 1024;

static COUNT: AtomicUsize = AtomicUsize::new(0);
static LIVE: AtomicIsize = AtomicIsize::new(0);

/// The system allocator, counting each allocation or growth to [`LARGE`]
/// bytes or more, and the bytes allocated and not yet freed.
#[derive(Debug)]
pub struct LargeAllocationCounter;

// SAFETY: every call is passed to the system allocator unchanged.
unsafe impl GlobalAlloc for LargeAllocationCounter {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        live(layout.size(), 0);
        // SAFETY: the caller's guarantees hold for `System` as they do here.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        live(layout.size(), 0);
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        live(0, layout.size());
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            count(new_size);
        }
        live(new_size, layout.size());
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn count(size: usize) {
    if size >= LARGE {
        COUNT.fetch_add(1, Ordering::Relaxed);
    }
}

fn live(allocated: usize, freed: usize) {
    let change = isize::try_from(allocated).unwrap_or(isize::MAX)
        - isize::try_from(freed).unwrap_or(isize::MAX);
    LIVE.fetch_add(change, Ordering::Relaxed);
}

/// Large allocations made so far by the process (0 unless
/// [`LargeAllocationCounter`] is its global allocator).
pub fn large_allocations() -> usize {
    COUNT.load(Ordering::Relaxed)
}

/// Bytes the process has allocated and not freed since
/// [`LargeAllocationCounter`] became its global allocator (0 if it is not).
pub fn live_bytes() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// One job this large goes through [`one_huge_reply_leaves_no_huge_buffer_behind`].
pub const HUGE_JOB: usize = 1 << 20;

/// A connection that read one very large reply does not keep a buffer of
/// that size for the rest of its life: `reader` (connected to `server`,
/// which must take jobs of [`HUGE_JOB`] bytes, with a `max_job_size` as
/// large) peeks and deletes small jobs, one [`HUGE_JOB`] job, then small
/// ones again; the bytes still allocated afterwards stay well below the
/// huge job's size. Call it from a binary whose global allocator is
/// [`LargeAllocationCounter`], alone in it.
///
/// # Panics
/// If a command fails, or the bytes kept reach half of [`HUGE_JOB`].
pub async fn one_huge_reply_leaves_no_huge_buffer_behind<C: AsyncCommands>(
    server: &Server,
    reader: &mut C,
) {
    assert!(
        live_bytes() > 0,
        "install LargeAllocationCounter as the binary's global allocator"
    );
    async fn cycle<C: AsyncCommands>(server: &Server, reader: &mut C, size: usize) {
        let mut command = format!("put 0 0 60 {size}\r\n").into_bytes();
        command.resize(command.len() + size, b'x');
        command.extend_from_slice(b"\r\n");
        let reply = String::from_utf8(server.raw_command(&command)).expect("text");
        let id = reply
            .trim_end()
            .strip_prefix("INSERTED ")
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| panic!("not inserted: {reply:?}"));
        let job = reader.peek(id).await.expect("peek").expect("found");
        assert_eq!(job.body.len(), size);
        drop(job);
        let deleted: Result<(), Error> = reader.delete(id).await;
        deleted.expect("delete");
    }
    for _ in 0..50 {
        cycle(server, reader, 10).await;
    }
    let before = live_bytes();
    cycle(server, reader, HUGE_JOB).await;
    for _ in 0..200 {
        cycle(server, reader, 10).await;
    }
    let kept = live_bytes() - before;
    assert!(
        kept < isize::try_from(HUGE_JOB / 2).expect("fits"),
        "{kept} bytes kept after the {HUGE_JOB}-byte job was dropped"
    );
}
