//! The shared conformance suite, run against the blocking client.

use std::future::{Future, ready};
use std::time::Duration;

use beanstalk_blocking::proto::{Request, Response, Token};
use beanstalk_blocking::{
    Client, Commands, Error, Execute, Job, Options, PutOptions, PutReceipt, cmd, proto,
};
use beanstalk_test_support::conformance::{Adapter, Settings};

/// The blocking client seen through the async command traits: each call
/// completes before its future is first polled.
struct Blocking(Client);

impl proto::AsyncExecute for Blocking {
    fn execute<R>(&mut self, request: R) -> impl Future<Output = Result<R::Output, Error>> + Send
    where
        R: Request + Send,
        R::Output: Send,
    {
        ready(self.0.execute(request))
    }
}

impl Adapter for Blocking {
    type Client = Self;

    fn connect(
        address: &str,
        settings: Settings,
    ) -> impl Future<Output = Result<Self, Error>> + Send {
        let options = Options::default()
            .read_timeout(settings.read_timeout)
            .write_timeout(settings.write_timeout)
            .max_job_size(settings.max_job_size)
            .connect_timeout(settings.connect_timeout);
        let client = Client::connect_with(address, options);
        ready(client.map(Blocking))
    }

    fn is_open(client: &Self) -> bool {
        client.0.is_open()
    }

    fn reconnect(client: &mut Self) -> impl Future<Output = Result<(), Error>> + Send {
        ready(client.0.reconnect())
    }

    fn put_pipelined(
        client: &mut Self,
        bodies: Vec<Vec<u8>>,
        options: PutOptions,
    ) -> impl Future<Output = Vec<Result<PutReceipt, Error>>> + Send {
        let puts: Vec<_> = bodies
            .into_iter()
            .map(|body| cmd::Put::new(body, options).expect("valid put"))
            .collect();
        ready(client.0.execute_many(puts))
    }

    fn send<R: Request>(client: &mut Self, request: &R) -> Result<Token, Error> {
        client.0.send(request)
    }

    fn recv(client: &mut Self) -> impl Future<Output = Result<(Token, Response), Error>> + Send {
        ready(client.0.recv())
    }

    fn reserve_within(
        client: &mut Self,
        timeout: Duration,
    ) -> impl Future<Output = Result<Job, Error>> + Send {
        ready(client.0.with_timeout(timeout).reserve())
    }
}

beanstalk_test_support::conformance_suite!(Blocking, beanstalk_test_support::block_on_ready);
