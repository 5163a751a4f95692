//! Runs the core's `embed_std` example (the README's "bring your own I/O"
//! code) against a real server, so the documented code is known to work.

// The example names the core by its crate name; this crate renames it `proto`.
extern crate proto as beanstalk_proto;

#[path = "../../beanstalk-proto/examples/embed_std.rs"]
mod embed_std;

#[test]
fn the_embedding_example_works() {
    let server = beanstalk_test_support::Server::start();
    embed_std::run(&server.tcp_addr().to_string()).unwrap();
    assert_eq!(server.stats_counter("cmd-delete"), 1);
    assert_eq!(server.stats_counter("current-jobs-ready"), 0);
}
