//! The core's whole share of a pipelined `execute_many`, per job: what
//! every adapter's loop costs besides its syscalls.
//!
//! - `run/put_100B`: 10,000 puts of 100 bytes through [`Run`]: encoding
//!   each, bounding what is unanswered, choosing the receive mark before
//!   each read ([`ReadLowWater::next_for`]), decoding each `INSERTED`
//!   reply and filing its result. The server is simulated: each read
//!   finds the replies to the next 32 commands sent (or fewer, if fewer
//!   are unanswered).
//!
//! Run with `cargo bench -p beanstalk-proto --bench run`.

use std::hint::black_box;

use beanstalk_proto::batch::Run;
use beanstalk_proto::cmd::Put;
use beanstalk_proto::read_low_water::ReadLowWater;
use beanstalk_proto::{Connection, PutOptions, WriteBuf};
use bytes::{Buf, BytesMut};
use criterion::{Criterion, Throughput, criterion_main};

const JOBS: usize = 10_000;

/// Replies a read finds: a real server's trickle in while the client
/// keeps thousands of puts unanswered, not all of them at once.
const REPLIES_PER_READ: usize = 32;

/// The reply to every put, ids of one width so the simulated server can
/// slice the replies to send out of one prepared buffer.
const REPLY: &[u8] = b"INSERTED 1234567\r\n";

/// Runs `JOBS` puts of `body` against a simulated server that answers
/// every command it is sent with `INSERTED <id>`.
fn put_run(body: &[u8], wire: &[u8]) -> usize {
    let mut conn = Connection::default();
    let mut out = WriteBuf::new();
    let mut mark = ReadLowWater::default();
    let mut input = BytesMut::with_capacity(64 * 1024);
    let mut answered_by_server = 0;
    let puts = (0..JOBS).map(|_| Put::new(body, PutOptions::default()).expect("a valid put"));
    let mut run = Run::new(puts);
    while run.fill(&mut conn, &mut out, &mut mark) {
        let reply = match conn.poll_response(&mut input) {
            Ok(Some(reply)) => Ok(reply),
            Ok(None) => {
                // What an adapter does before it reads: write, set the mark.
                let written = out.remaining();
                out.advance(written);
                black_box(mark.next_for(&conn));
                let answering = conn.in_flight().min(REPLIES_PER_READ);
                let from = answered_by_server * REPLY.len();
                let to = (answered_by_server + answering) * REPLY.len();
                input.extend_from_slice(wire.get(from..to).expect("one reply per job"));
                answered_by_server += answering;
                conn.poll_response(&mut input)
                    .map(|reply| reply.expect("a reply was just added"))
            }
            Err(error) => Err(error),
        };
        run.answer(&conn, reply.map_err(Into::into));
    }
    run.finish().into_iter().filter(Result::is_ok).count()
}

/// What `criterion_group!` would generate, but documented and private.
fn benches() {
    let mut c = Criterion::default().configure_from_args();
    let mut group = c.benchmark_group("run");
    group.throughput(Throughput::Elements(JOBS as u64));
    let body = [b'x'; 100];
    let wire = REPLY.repeat(JOBS);
    group.bench_function("put_100B", |b| {
        b.iter(|| assert_eq!(put_run(&body, &wire), JOBS));
    });
    group.finish();
}

criterion_main!(benches);
