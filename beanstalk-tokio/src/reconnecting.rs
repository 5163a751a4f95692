//! The reconnecting client on tokio: the core's
//! [`Reconnecting`] over this crate's [`Client`].

use std::time::Duration;

use proto::reconnecting::{Reconnect, ReconnectEvent, Reconnecting};
use proto::{Endpoint, Error, Options, Request, Response, Session, Token};

use crate::client::Client;

/// A [`Client`] that reconnects, with bounded exponential backoff, when its
/// connection breaks, and restores the tube in use and the watch list
/// before any other command on the new connection.
///
/// It has all 25 commands ([`crate::AsyncCommands`]). Which commands are
/// sent again after a break, which fail as [`Error::Unconfirmed`] or
/// [`Error::LeaseLost`], and how many attempts a call makes, is described
/// on the core's [`Reconnecting`], which this is over tokio's [`Client`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), beanstalk_tokio::Error> {
/// # let mut server = beanstalk_test_support::Server::builder().binlog_temp().start();
/// # let address = server.url();
/// use beanstalk_tokio::{AsyncCommands, PutOptions, ReconnectingClient};
///
/// let mut client = ReconnectingClient::connect(&address).await?;
/// client.use_tube("emails").await?;
/// client.put("before", PutOptions::default()).await?;
///
/// server.restart(); // kill -9, start again with the same binlog
///
/// // The first command after the restart finds the connection dead. A put
/// // is not re-sent: it reports that its job may exist.
/// match client.put("during", PutOptions::default()).await {
///     Ok(_) => {}                                 // the break was noticed in time
///     Err(error) => assert!(error.outcome_unknown()), // the put's reply was lost
/// }
/// // The connection was replaced and `use emails` restored before anything else.
/// client.put("after", PutOptions::default()).await?;
/// assert_eq!(client.list_tube_used().await?.as_str(), "emails");
/// assert_eq!(client.reconnects(), 1);
/// # Ok(())
/// # }
/// ```
///
/// With a policy of your own:
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), beanstalk_tokio::Error> {
/// # let server = beanstalk_test_support::Server::start();
/// use beanstalk_tokio::proto::retry::{Backoff, PutRetry, ReconnectPolicy};
/// use beanstalk_tokio::{Options, ReconnectingClient};
/// use std::time::Duration;
///
/// let policy = ReconnectPolicy::default()
///     .backoff(Backoff::new(Duration::from_millis(20), Duration::from_secs(2)).jitter(1))
///     .max_attempts(None) // keep trying
///     .put_retry(PutRetry::AtLeastOnce);
/// let client = ReconnectingClient::connect_with(&server.url(), Options::default(), policy).await?;
/// assert!(client.is_connected());
/// # Ok(())
/// # }
/// ```
pub type ReconnectingClient = Reconnecting<Client>;

impl Reconnect for Client {
    async fn open(endpoint: &Endpoint, options: Options) -> Result<Self, Error> {
        Self::connect_endpoint(endpoint, options).await
    }

    async fn reopen(&mut self) -> Result<(), Error> {
        Self::reconnect(self).await
    }

    fn is_open(&self) -> bool {
        Self::is_open(self)
    }

    fn session(&self) -> &Session {
        self.connection().session()
    }

    fn close(&mut self) {
        Self::close(self);
    }

    fn close_if_peer_left(&mut self) {
        Self::close_if_peer_left(self);
    }

    fn begin<R: Request>(&mut self, request: &R) -> Result<Token, Error> {
        Self::send(self, request)
    }

    async fn finish(&mut self, token: Token) -> Result<Response, Error> {
        Self::finish(self, token).await
    }

    async fn sleep(delay: Duration) {
        tokio::time::sleep(delay).await;
    }

    fn observe(event: ReconnectEvent<'_>) {
        match event {
            ReconnectEvent::Broke(error) => {
                crate::event!(warn, %error, "connection lost; reconnecting");
                let _ = error;
            }
            ReconnectEvent::Backoff { delay, failures } => {
                crate::event!(debug, ?delay, failures, "waiting before reconnecting");
                let _ = (delay, failures);
            }
            ReconnectEvent::ConnectFailed(error) => {
                crate::event!(warn, %error, "connecting failed");
                let _ = error;
            }
            ReconnectEvent::Reconnected { generation } => {
                crate::event!(info, generation, "reconnected");
                let _ = generation;
            }
            _ => {}
        }
    }
}
