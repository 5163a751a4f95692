//! The reconnecting client on smol or async-std: the core's
//! [`Reconnecting`] over this crate's [`Client`].

use std::time::Duration;

use proto::reconnecting::{Reconnect, Reconnecting};
use proto::{Endpoint, Error, Options, Request, Response, Session, Token};

use crate::client::Client;
use crate::stream::DefaultStream;

/// A command sent after the connection has been quiet this long first
/// checks that the server has not closed it meanwhile (a restart, an idle
/// timeout), so it goes out on a new connection instead of into a dead one
/// and coming back "outcome unknown". The check is a syscall, so a busy
/// connection skips it.
const IDLE_PROBE: Duration = Duration::from_millis(100);

/// A [`Client`] that reconnects, with bounded exponential backoff, when its
/// connection breaks, and restores the tube in use and the watch list
/// before any other command on the new connection: the same client as the
/// tokio adapter's, from the same core ([`proto::reconnect`]).
///
/// It has all 25 commands ([`crate::AsyncCommands`]). Which commands are
/// sent again after a break, which fail as [`Error::Unconfirmed`] or
/// [`Error::LeaseLost`], and how many attempts a call makes, is described
/// on the core's [`Reconnecting`].
///
/// ```
/// # smol::block_on(async {
/// # let mut server = beanstalk_test_support::Server::builder().binlog_temp().start();
/// use beanstalk_async_std::{AsyncCommands, PutOptions, ReconnectingClient};
///
/// let mut client = ReconnectingClient::connect(&server.url()).await?;
/// client.use_tube("emails").await?;
/// server.restart(); // kill -9, start again with the same binlog
/// # smol::Timer::after(std::time::Duration::from_millis(150)).await;
/// // The idle connection's end is noticed before the put is written.
/// client.put("after", PutOptions::default()).await?;
/// assert_eq!(client.list_tube_used().await?.as_str(), "emails");
/// assert_eq!(client.reconnects(), 1);
/// # Ok::<(), beanstalk_async_std::Error>(())
/// # }).unwrap();
/// ```
pub type ReconnectingClient = Reconnecting<Client<DefaultStream>>;

impl Reconnect for Client<DefaultStream> {
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
        Self::close_if_peer_left(self, IDLE_PROBE);
    }

    fn begin<R: Request>(&mut self, request: &R) -> Result<Token, Error> {
        Self::send(self, request)
    }

    async fn finish(&mut self, token: Token) -> Result<Response, Error> {
        Self::finish(self, token).await
    }

    async fn sleep(delay: Duration) {
        async_io::Timer::after(delay).await;
    }
}
