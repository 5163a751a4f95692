//! A global allocator that counts large allocations, for tests about how a
//! driver's buffers are allocated.
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
use std::sync::atomic::{AtomicUsize, Ordering};

/// Allocations of this many bytes or more are counted.
pub const LARGE: usize = 32 * 1024;

static COUNT: AtomicUsize = AtomicUsize::new(0);

/// The system allocator, counting each allocation or growth to [`LARGE`]
/// bytes or more.
#[derive(Debug)]
pub struct LargeAllocationCounter;

// SAFETY: every call is passed to the system allocator unchanged.
unsafe impl GlobalAlloc for LargeAllocationCounter {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: the caller's guarantees hold for `System` as they do here.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            count(new_size);
        }
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn count(size: usize) {
    if size >= LARGE {
        COUNT.fetch_add(1, Ordering::Relaxed);
    }
}

/// Large allocations made so far by the process (0 unless
/// [`LargeAllocationCounter`] is its global allocator).
pub fn large_allocations() -> usize {
    COUNT.load(Ordering::Relaxed)
}
