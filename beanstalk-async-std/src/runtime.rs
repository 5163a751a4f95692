//! Which runtime's sockets and spawner the connect helpers use.
//!
//! With one runtime feature that runtime is used. With both (the default),
//! the choice is made per call: inside an async-std task (one started by
//! `async_std::task::block_on` or `spawn`) async-std's, otherwise smol's.
//! Both runtimes drive their sockets on the same async-io reactor, so
//! either works under the other; the choice decides whose executor runs a
//! [`crate::SharedClient`] driver, and keeps an async-std program from
//! starting smol's executor thread.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A runtime whose helpers this build has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Runtime {
    #[cfg(feature = "smol")]
    Smol,
    #[cfg(feature = "async-std")]
    AsyncStd,
}

impl Runtime {
    /// The runtime to use for a call made from the current context.
    pub(crate) fn current() -> Self {
        #[cfg(all(feature = "smol", feature = "async-std"))]
        if async_std::task::try_current().is_some() {
            return Self::AsyncStd;
        }
        #[cfg(feature = "smol")]
        return Self::Smol;
        #[cfg(not(feature = "smol"))]
        return Self::AsyncStd;
    }

    /// Runs `future` in the background on this runtime's executor.
    pub(crate) fn spawn<F>(self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        match self {
            #[cfg(feature = "smol")]
            Self::Smol => smol::spawn(future).detach(),
            // Dropping async-std's JoinHandle detaches the task.
            #[cfg(feature = "async-std")]
            Self::AsyncStd => drop(async_std::task::spawn(future)),
        }
    }

    /// Runs `future` on this runtime's executor and returns its handle.
    pub(crate) fn spawn_task<F>(self, future: F) -> Task<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match self {
            #[cfg(feature = "smol")]
            Self::Smol => Task::Smol(smol::spawn(future)),
            #[cfg(feature = "async-std")]
            Self::AsyncStd => Task::AsyncStd(async_std::task::spawn(future)),
        }
    }
}

/// A task on one of the runtimes: awaiting it gives its output.
#[derive(Debug)]
pub(crate) enum Task<T> {
    #[cfg(feature = "smol")]
    Smol(smol::Task<T>),
    #[cfg(feature = "async-std")]
    AsyncStd(async_std::task::JoinHandle<T>),
}

impl<T> Task<T> {
    /// Stops the task and completes once it is gone.
    pub(crate) async fn cancel(self) {
        match self {
            #[cfg(feature = "smol")]
            Self::Smol(task) => drop(task.cancel().await),
            #[cfg(feature = "async-std")]
            Self::AsyncStd(task) => drop(task.cancel().await),
        }
    }
}

impl<T> Future for Task<T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        match self.get_mut() {
            #[cfg(feature = "smol")]
            Self::Smol(task) => Pin::new(task).poll(cx),
            #[cfg(feature = "async-std")]
            Self::AsyncStd(task) => Pin::new(task).poll(cx),
        }
    }
}
