//! One timer per connection for every deadline, kept armed from one wait to
//! the next. Shared by [`crate::Client`] and the [`crate::SharedClient`]
//! driver.
//!
//! A `tokio::time::timeout` per command builds a `Sleep`, inserts it into
//! the runtime's timer wheel when the command has to wait, and removes it
//! again when the reply comes: about 700 instructions per command (counted
//! with callgrind), a seventh of what a request-response `put` costs in
//! user space. Deadlines only ever move later in steady traffic, so the
//! watchdog stays armed at an earlier command's deadline. When it fires
//! before the current deadline, it is re-armed: once per timeout at most.

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// The reusable timer. See the module documentation.
#[derive(Debug)]
pub(crate) struct Watchdog {
    sleep: Pin<Box<Sleep>>,
    /// When the timer fires; `None` once it has fired or was never armed.
    armed: Option<Instant>,
}

impl Watchdog {
    /// An unarmed watchdog. Needs the runtime's time driver.
    pub(crate) fn new() -> Self {
        Self {
            sleep: Box::pin(tokio::time::sleep_until(Instant::now() + FAR_FUTURE)),
            armed: None,
        }
    }

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
        let mut future = pin!(future);
        poll_fn(|cx| {
            if let Poll::Ready(output) = future.as_mut().poll(cx) {
                return Poll::Ready(Some(output));
            }
            self.poll_passed(cx, deadline).map(|()| None)
        })
        .await
    }

    /// Runs `future` for at most `timeout` from its first wait: `None` if
    /// that passed first. A future that never waits never reads the clock.
    pub(crate) async fn within<F: Future>(
        &mut self,
        timeout: Duration,
        future: F,
    ) -> Option<F::Output> {
        let mut future = pin!(future);
        // `None` inside: the timeout is past what `Instant` can hold.
        let mut deadline: Option<Option<Instant>> = None;
        poll_fn(|cx| {
            if let Poll::Ready(output) = future.as_mut().poll(cx) {
                return Poll::Ready(Some(output));
            }
            match *deadline.get_or_insert_with(|| deadline_after(timeout)) {
                Some(at) => self.poll_passed(cx, at).map(|()| None),
                None => Poll::Pending,
            }
        })
        .await
    }

    /// Waits until `deadline` has passed (forever for `None`).
    pub(crate) async fn wait_until(&mut self, deadline: Option<Instant>) {
        match deadline {
            Some(deadline) => poll_fn(|cx| self.poll_passed(cx, deadline)).await,
            None => std::future::pending().await,
        }
    }

    /// Ready once `deadline` has passed; otherwise the timer is armed (no
    /// later than `deadline`) to wake `cx`. Reads the clock only when the
    /// timer fires.
    fn poll_passed(&mut self, cx: &mut Context<'_>, deadline: Instant) -> Poll<()> {
        loop {
            if self.armed.is_none_or(|armed| armed > deadline) {
                // A deadline already past fires at once.
                self.sleep.as_mut().reset(deadline);
                self.armed = Some(deadline);
            }
            if self.sleep.as_mut().poll(cx).is_pending() {
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

/// The instant `timeout` from now; `None` (no deadline) if that is past
/// what the clock can hold, as for `Duration::MAX`.
pub(crate) fn deadline_after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// Where an unarmed watchdog's timer points: a year away.
const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365);

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_ready_future_wins_over_a_passed_deadline() {
        let mut watchdog = Watchdog::new();
        let past = Instant::now();
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(watchdog.until(Some(past), async { 7 }).await, Some(7));
    }

    /// Arms `watchdog` at `deadline` with a wait that ends after 1 s.
    async fn arm(watchdog: &mut Watchdog, deadline: Instant) {
        let short = tokio::time::sleep(Duration::from_secs(1));
        assert_eq!(watchdog.until(Some(deadline), short).await, Some(()));
        assert_eq!(watchdog.armed, Some(deadline));
    }

    #[tokio::test(start_paused = true)]
    async fn armed_early_it_fires_then_waits_for_the_later_deadline() {
        let mut watchdog = Watchdog::new();
        let start = Instant::now();
        arm(&mut watchdog, start + Duration::from_secs(5)).await;
        let later = start + Duration::from_secs(6);
        let waited = watchdog.until(Some(later), std::future::pending::<()>());
        assert_eq!(waited.await, None);
        assert_eq!(Instant::now(), later);
    }

    #[tokio::test(start_paused = true)]
    async fn an_earlier_deadline_moves_the_timer() {
        let mut watchdog = Watchdog::new();
        let start = Instant::now();
        arm(&mut watchdog, start + Duration::from_secs(60)).await;
        let pending = std::future::pending::<()>();
        let waited = watchdog.within(Duration::from_millis(100), pending);
        assert_eq!(waited.await, None);
        assert_eq!(Instant::now(), start + Duration::from_millis(1_100));
    }

    #[tokio::test(start_paused = true)]
    async fn no_deadline_waits_for_the_future() {
        let mut watchdog = Watchdog::new();
        let slow = tokio::time::sleep(Duration::from_secs(3_600));
        assert_eq!(watchdog.until(None, slow).await, Some(()));
        assert_eq!(watchdog.armed, None);
    }
}
