//! The shared conformance suite, run against the tokio client.

use std::future::Future;
use std::time::Duration;

use beanstalk_test_support::conformance::{Adapter, Settings};
use beanstalk_tokio::proto::{Request, Response, Token};
use beanstalk_tokio::{AsyncCommands, Client, Error, Job, Options, PutOptions, PutReceipt, cmd};

struct Tokio;

impl Adapter for Tokio {
    type Client = Client;

    fn connect(
        address: &str,
        settings: Settings,
    ) -> impl Future<Output = Result<Client, Error>> + Send {
        let options = Options::default()
            .read_timeout(settings.read_timeout)
            .write_timeout(settings.write_timeout)
            .max_job_size(settings.max_job_size)
            .connect_timeout(settings.connect_timeout);
        let address = address.to_owned();
        async move { Client::connect_with(&address, options).await }
    }

    fn is_open(client: &Client) -> bool {
        client.is_open()
    }

    fn reconnect(client: &mut Client) -> impl Future<Output = Result<(), Error>> + Send {
        client.reconnect()
    }

    fn put_pipelined(
        client: &mut Client,
        bodies: Vec<Vec<u8>>,
        options: PutOptions,
    ) -> impl Future<Output = Vec<Result<PutReceipt, Error>>> + Send {
        let puts: Vec<_> = bodies
            .into_iter()
            .map(|body| cmd::Put::new(body, options).expect("valid put"))
            .collect();
        client.execute_many(puts)
    }

    fn send<R: Request>(client: &mut Client, request: &R) -> Result<Token, Error> {
        client.send(request)
    }

    fn recv(client: &mut Client) -> impl Future<Output = Result<(Token, Response), Error>> + Send {
        client.recv()
    }

    async fn reserve_within(client: &mut Client, timeout: Duration) -> Result<Job, Error> {
        client.with_timeout(timeout).reserve().await
    }
}

fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(future)
}

beanstalk_test_support::conformance_suite!(Tokio, block_on);
