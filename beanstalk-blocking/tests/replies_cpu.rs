//! Where replies come from, as the receive mark sees it
//! (`read_low_water::replies_from_another_cpu`): a real server pinned to
//! one CPU, this test's thread pinned to the same CPU or to another. (The
//! conformance suite's `pipelines_from_another_cpu_are_never_held_back`
//! runs every client's pipelines that way.)

use std::io::{Read, Write};
use std::net::TcpStream;

use beanstalk_blocking::proto::read_low_water::replies_from_another_cpu;
use beanstalk_test_support::Server;
use beanstalk_test_support::cpus::{pin, pin_this_thread};

/// Puts a job over `stream`, reads the reply, and says where it came from.
fn put_and_look(stream: &mut TcpStream) -> Option<bool> {
    stream.write_all(b"put 0 0 60 1\r\nx\r\n").unwrap();
    let mut reply = Vec::new();
    let mut byte = [0; 1];
    while !reply.ends_with(b"\r\n") {
        stream.read_exact(&mut byte).unwrap();
        reply.push(byte[0]);
    }
    assert!(reply.starts_with(b"INSERTED "), "{reply:?}");
    replies_from_another_cpu(stream)
}

#[test]
fn a_server_on_another_cpu_is_told_from_one_on_ours() {
    let server = Server::start();
    pin(server.pid(), 0);
    let mut stream = TcpStream::connect(server.tcp_addr()).unwrap();
    pin_this_thread(0);
    assert_eq!(put_and_look(&mut stream), Some(false), "both on CPU 0");
    pin_this_thread(1);
    assert_eq!(
        put_and_look(&mut stream),
        Some(true),
        "server on CPU 0, client on CPU 1"
    );
    pin_this_thread(0);
    assert_eq!(put_and_look(&mut stream), Some(false), "together again");
}
