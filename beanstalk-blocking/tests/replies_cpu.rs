//! Where replies come from, as the receive mark sees it
//! (`read_low_water::replies_from_another_cpu`): a real server pinned to
//! one CPU, this test's thread pinned to the same CPU and then to another.

use std::io::{Read, Write};
use std::net::TcpStream;

use beanstalk_blocking::proto::read_low_water::replies_from_another_cpu;
use beanstalk_test_support::Server;

/// Pins `pid` (0: the calling thread) to `cpu`.
fn pin(pid: libc::pid_t, cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes within it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: the set is live and its size is passed with it.
    let rc = unsafe { libc::sched_setaffinity(pid, size_of::<libc::cpu_set_t>(), &set) };
    assert_eq!(
        rc,
        0,
        "pinning {pid} to CPU {cpu}: {}",
        std::io::Error::last_os_error()
    );
}

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
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert!(
        cpus >= 2,
        "this test pins the server and itself to two different CPUs; this machine offers {cpus}"
    );
    let server = Server::start();
    pin(libc::pid_t::try_from(server.pid()).unwrap(), 0);
    let mut stream = TcpStream::connect(server.tcp_addr()).unwrap();
    pin(0, 0);
    assert_eq!(put_and_look(&mut stream), Some(false), "both on CPU 0");
    pin(0, 1);
    assert_eq!(
        put_and_look(&mut stream),
        Some(true),
        "server on CPU 0, client on CPU 1"
    );
    pin(0, 0);
    assert_eq!(put_and_look(&mut stream), Some(false), "together again");
}
