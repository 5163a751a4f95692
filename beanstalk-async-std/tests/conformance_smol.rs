//! The shared conformance suite, run against the client on smol.
#![cfg(feature = "smol")]

mod adapter;

beanstalk_test_support::conformance_suite!(adapter::FuturesIo, smol::block_on);

use beanstalk_async_std::Client;
use beanstalk_test_support::Server;

/// Outside an async-std task the connect helpers pick smol's sockets.
#[test]
fn connects_with_smol_sockets() {
    let server = Server::start();
    let unix = Server::builder().unix_socket().start();
    smol::block_on(async {
        let client = Client::connect(&server.url()).await.unwrap();
        assert!(format!("{client:?}").contains("SmolTcp"), "{client:?}");
        let client = Client::connect(&unix.url()).await.unwrap();
        assert!(format!("{client:?}").contains("SmolUnix"), "{client:?}");
    });
}
