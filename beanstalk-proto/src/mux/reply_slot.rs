//! Where a shared handle's reply lands: one slot per handle, reused by
//! every call, so a command costs no allocation (a channel per call would
//! cost one).
//!
//! A handle makes one call at a time. Each call [begins](ReplySlot::begin)
//! by numbering itself, which forgets whatever an earlier, abandoned call
//! left, and gets a [`ReplyTicket`] to register with
//! [`Mux::enqueue`](crate::mux::Mux::enqueue) and a [`ReplyWait`] to await.
//! The driver [delivers](ReplyTicket::deliver) each reply through its
//! ticket; a ticket dropped without a reply (the driver stopped) delivers
//! [`ProtocolError::Abandoned`]. A reply for a call the handle has given up
//! on finds a newer number in the slot and is dropped.
//!
//! ```
//! use beanstalk_proto::{mux::ReplySlot, Response};
//! use std::{future::Future, pin::pin, task::{Context, Poll, Waker}};
//!
//! let slot = ReplySlot::default();
//! let (ticket, wait) = slot.begin();
//! ticket.deliver(Ok(Response::Inserted(1))); // the driver's side
//! let mut cx = Context::from_waker(Waker::noop());
//! assert!(matches!(pin!(wait).poll(&mut cx), Poll::Ready(Ok(Response::Inserted(1)))));
//! ```

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::error::{Error, ProtocolError};
use crate::response::Response;

/// One handle's reply slot; see the [module docs](self).
///
/// Cloning gives a new, empty slot rather than a second reference: a slot
/// serves one caller's calls, so a cloned handle needs its own, and a
/// handle holding a `ReplySlot` can derive `Clone`.
#[derive(Debug, Default)]
pub struct ReplySlot {
    shared: Arc<Shared>,
}

impl Clone for ReplySlot {
    fn clone(&self) -> Self {
        Self::default()
    }
}

/// What the slot's tickets point to.
#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The number of the call the slot now serves.
    call: u64,
    reply: Option<Result<Response, Error>>,
    waker: Option<Waker>,
}

impl ReplySlot {
    /// Starts the handle's next call: the ticket goes to the driver with
    /// the command, the wait resolves to the reply it delivers.
    pub fn begin(&self) -> (ReplyTicket, ReplyWait<'_>) {
        let call = {
            let mut state = self.shared.lock();
            state.call = state.call.wrapping_add(1);
            state.reply = None;
            state.waker = None;
            state.call
        };
        let ticket = ReplyTicket {
            slot: Some(Arc::clone(&self.shared)),
            call,
        };
        let wait = ReplyWait {
            slot: &self.shared,
            call,
        };
        (ticket, wait)
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update is a plain assignment: consistent even after a panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn fill(&self, call: u64, reply: Result<Response, Error>) {
        let waker = {
            let mut state = self.lock();
            if state.call != call {
                return; // the caller gave up on this call
            }
            state.reply = Some(reply);
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// The driver's side of one call: the waiter registered with the command.
#[derive(Debug)]
pub struct ReplyTicket {
    /// `None` once delivered.
    slot: Option<Arc<Shared>>,
    call: u64,
}

impl ReplyTicket {
    /// Hands the call its reply (a caller that gave up simply misses it).
    pub fn deliver(mut self, reply: Result<Response, Error>) {
        if let Some(slot) = self.slot.take() {
            slot.fill(self.call, reply);
        }
    }
}

impl Drop for ReplyTicket {
    /// Dropped unanswered: the driver stopped, so the command is abandoned.
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            slot.fill(self.call, Err(Error::Protocol(ProtocolError::Abandoned)));
        }
    }
}

/// The caller's side of one call: resolves to its reply.
#[derive(Debug)]
#[must_use = "the reply is only seen by awaiting it"]
pub struct ReplyWait<'a> {
    slot: &'a Shared,
    call: u64,
}

impl Future for ReplyWait<'_> {
    type Output = Result<Response, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.slot.lock();
        if state.call != self.call {
            // A newer call began on this slot: this one was given up.
            return Poll::Ready(Err(Error::Protocol(ProtocolError::Abandoned)));
        }
        if let Some(reply) = state.reply.take() {
            return Poll::Ready(reply);
        }
        if !state
            .waker
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            state.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
        Pin::new(future).poll(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn a_reply_reaches_the_call_that_waits_for_it() {
        let slot = ReplySlot::default();
        let (ticket, mut wait) = slot.begin();
        assert!(poll_once(&mut wait).is_pending());
        ticket.deliver(Ok(Response::Inserted(2)));
        assert!(matches!(
            poll_once(&mut wait),
            Poll::Ready(Ok(Response::Inserted(2)))
        ));
    }

    #[test]
    fn a_late_reply_of_an_abandoned_call_is_not_taken_for_the_next() {
        let slot = ReplySlot::default();
        let (old_ticket, old_wait) = slot.begin();
        drop(old_wait); // the caller gave up
        let (ticket, mut wait) = slot.begin();
        old_ticket.deliver(Ok(Response::Inserted(1)));
        assert!(poll_once(&mut wait).is_pending(), "not the old reply");
        ticket.deliver(Ok(Response::Inserted(2)));
        assert!(matches!(
            poll_once(&mut wait),
            Poll::Ready(Ok(Response::Inserted(2)))
        ));
    }

    #[test]
    fn a_ticket_dropped_unanswered_abandons_the_call() {
        let slot = ReplySlot::default();
        let (ticket, mut wait) = slot.begin();
        drop(ticket);
        assert!(matches!(
            poll_once(&mut wait),
            Poll::Ready(Err(Error::Protocol(ProtocolError::Abandoned)))
        ));
    }
}
