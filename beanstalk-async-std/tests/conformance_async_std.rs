//! The shared conformance suite, run against the client on async-std: under
//! `async_std::task::block_on` the connect helpers use async-std's sockets.
#![cfg(feature = "async-std")]

mod adapter;

beanstalk_test_support::conformance_suite!(adapter::FuturesIo, async_std::task::block_on);

use beanstalk_async_std::{AsyncCommands, Client, PutOptions, SharedClient};
use beanstalk_test_support::Server;

/// Inside an async-std task the connect helpers pick async-std's sockets,
/// even with the smol feature on too.
#[test]
fn connects_with_async_std_sockets() {
    let server = Server::start();
    let unix = Server::builder().unix_socket().start();
    async_std::task::block_on(async {
        let client = Client::connect(&server.url()).await.unwrap();
        assert!(format!("{client:?}").contains("AsyncStdTcp"), "{client:?}");
        let client = Client::connect(&unix.url()).await.unwrap();
        assert!(format!("{client:?}").contains("AsyncStdUnix"), "{client:?}");
    });
}

/// A SharedClient whose driver async-std spawned, used from async-std tasks.
#[test]
fn shared_client_on_async_std_tasks() {
    let server = Server::start();
    async_std::task::block_on(async {
        let client = SharedClient::connect(&server.url()).await.unwrap();
        let tasks: Vec<_> = (0..8)
            .map(|task| {
                let mut client = client.clone();
                async_std::task::spawn(async move {
                    client.use_tube(format!("tube-{task}")).await.unwrap();
                    for i in 0..50 {
                        client
                            .put(format!("{task}:{i}"), PutOptions::default())
                            .await
                            .unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await;
        }
        let mut client = client.clone();
        for task in 0..8 {
            assert_eq!(
                client
                    .stats_tube(format!("tube-{task}"))
                    .await
                    .unwrap()
                    .total_jobs,
                50
            );
        }
    });
}
