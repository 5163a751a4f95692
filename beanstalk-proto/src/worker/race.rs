//! The two future combinators the slot loop needs, so it runs on any
//! runtime: the first of two futures, and a panic caught as a value.

use alloc::boxed::Box;
use core::future::{Future, poll_fn};
use core::pin::{Pin, pin};
use core::task::{Context, Poll};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Which of two futures finished first.
pub(super) enum Either<A, B> {
    Left(A),
    Right(B),
}

/// Polls `left` then `right` until one completes; the other is dropped.
/// `left` wins a tie, as in a biased `select!`.
pub(super) async fn first<A: Future, B: Future>(left: A, right: B) -> Either<A::Output, B::Output> {
    let mut left = pin!(left);
    let mut right = pin!(right);
    poll_fn(|cx| {
        if let Poll::Ready(out) = left.as_mut().poll(cx) {
            return Poll::Ready(Either::Left(out));
        }
        right.as_mut().poll(cx).map(Either::Right)
    })
    .await
}

/// A future that never completes, for a branch that is switched off.
pub(super) async fn never<T>() -> T {
    poll_fn(|_| Poll::Pending).await
}

/// A handler panicked; the panic was caught on its task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Panicked;

/// A future whose panic becomes [`Panicked`], so a handler's panic is a
/// failed try on every runtime (tokio reports one as a join error, smol
/// would resume it in the worker).
pub(super) struct CatchUnwind<T>(Pin<Box<dyn Future<Output = T> + Send>>);

impl<T> CatchUnwind<T> {
    pub(super) fn new(future: impl Future<Output = T> + Send + 'static) -> Self {
        Self(Box::pin(future))
    }
}

impl<T> Future for CatchUnwind<T> {
    type Output = Result<T, Panicked>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Ready(out)) => Poll::Ready(Ok(out)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => Poll::Ready(Err(Panicked)),
        }
    }
}
