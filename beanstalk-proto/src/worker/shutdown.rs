//! A cloneable shutdown signal that any runtime can wait on.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::{Context, Poll, Waker};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// A shutdown signal: cloneable, triggered once, awaited by any number of
/// tasks on any runtime. Triggering it tells a worker to stop reserving at
/// once, let in-flight handlers finish within the grace period, and
/// release what remains.
///
/// ```
/// use beanstalk_proto::worker::Shutdown;
/// use std::task::{Context, Poll, Waker};
///
/// let shutdown = Shutdown::new();
/// let waiter = shutdown.clone();
/// let mut triggered = std::pin::pin!(waiter.triggered());
/// let mut cx = Context::from_waker(Waker::noop());
/// assert!(triggered.as_mut().poll(&mut cx).is_pending());
/// shutdown.trigger(); // on Ctrl-C, say
/// assert!(triggered.as_mut().poll(&mut cx).is_ready());
/// assert!(waiter.is_triggered());
/// ```
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    triggered: AtomicBool,
    /// The tasks waiting, by slot; a waiter that goes away frees its slot.
    waiters: Mutex<Vec<Option<Waker>>>,
}

impl Inner {
    fn waiters(&self) -> MutexGuard<'_, Vec<Option<Waker>>> {
        // Every update is a single store into the vector, consistent even
        // if a holder panicked.
        self.waiters.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Shutdown {
    /// A signal not yet triggered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Triggers the signal; every clone sees it. Triggering again does
    /// nothing.
    pub fn trigger(&self) {
        self.inner.triggered.store(true, Ordering::Release);
        let waiting: Vec<Waker> = self
            .inner
            .waiters()
            .iter_mut()
            .filter_map(Option::take)
            .collect();
        for waker in waiting {
            waker.wake();
        }
    }

    /// Whether the signal was triggered.
    pub fn is_triggered(&self) -> bool {
        self.inner.triggered.load(Ordering::Acquire)
    }

    /// Completes once the signal is triggered (at once if it already was).
    /// The future owns a handle on the signal, so it borrows nothing.
    pub fn triggered(&self) -> Triggered {
        Triggered {
            shutdown: self.clone(),
            slot: None,
        }
    }
}

/// The future of [`Shutdown::triggered`].
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct Triggered {
    shutdown: Shutdown,
    /// Where this future's waker is registered.
    slot: Option<usize>,
}

impl Future for Triggered {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.shutdown.is_triggered() {
            return Poll::Ready(());
        }
        let inner = &self.shutdown.inner;
        let mut waiters = inner.waiters();
        let slot = match self.slot {
            Some(slot) => slot,
            None => waiters.iter().position(Option::is_none).unwrap_or_else(|| {
                waiters.push(None);
                waiters.len() - 1
            }),
        };
        if let Some(entry) = waiters.get_mut(slot) {
            match entry {
                Some(waker) if waker.will_wake(cx.waker()) => {}
                _ => *entry = Some(cx.waker().clone()),
            }
        }
        drop(waiters);
        self.slot = Some(slot);
        // Triggered between the first check and the registration: the
        // trigger may have missed this waker.
        if self.shutdown.is_triggered() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Drop for Triggered {
    fn drop(&mut self) {
        if let Some(slot) = self.slot {
            if let Some(entry) = self.shutdown.inner.waiters().get_mut(slot) {
                *entry = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::task::Waker;

    #[test]
    fn dropped_waiters_free_their_slot() {
        let shutdown = Shutdown::new();
        let mut cx = Context::from_waker(Waker::noop());
        for _ in 0..100 {
            let mut waiting = core::pin::pin!(shutdown.triggered());
            assert!(waiting.as_mut().poll(&mut cx).is_pending());
        }
        assert_eq!(shutdown.inner.waiters().len(), 1);
    }

    #[test]
    fn a_late_waiter_completes_at_once() {
        let shutdown = Shutdown::new();
        shutdown.trigger();
        let mut cx = Context::from_waker(Waker::noop());
        assert!(
            core::pin::pin!(shutdown.triggered())
                .poll(&mut cx)
                .is_ready()
        );
    }
}
