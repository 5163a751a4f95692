//! A cloneable shutdown signal.

use std::sync::Arc;

use tokio::sync::watch;

/// A shutdown signal: cloneable, triggered once, awaited by any number of
/// tasks. Triggering it tells a [`super::Worker`] to stop reserving at
/// once, let in-flight handlers finish within the grace period, and
/// release what remains.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use beanstalk_tokio::Shutdown;
///
/// let shutdown = Shutdown::new();
/// let waiter = shutdown.clone();
/// let task = tokio::spawn(async move { waiter.triggered().await; "stopped" });
/// // For example on Ctrl-C: `tokio::signal::ctrl_c().await?; shutdown.trigger();`
/// shutdown.trigger();
/// assert_eq!(task.await.unwrap(), "stopped");
/// assert!(shutdown.is_triggered());
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Shutdown {
    sender: Arc<watch::Sender<bool>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// A signal not yet triggered.
    pub fn new() -> Self {
        Self {
            sender: Arc::new(watch::Sender::new(false)),
        }
    }

    /// Triggers the signal; every clone sees it. Triggering again does
    /// nothing.
    pub fn trigger(&self) {
        self.sender.send_replace(true);
    }

    /// Whether the signal was triggered.
    pub fn is_triggered(&self) -> bool {
        *self.sender.borrow()
    }

    /// Completes once the signal is triggered (at once if it already was).
    pub async fn triggered(&self) {
        let mut receiver = self.sender.subscribe();
        // The sender lives as long as `self`, so this cannot fail.
        let _ = receiver.wait_for(|triggered| *triggered).await;
    }
}
