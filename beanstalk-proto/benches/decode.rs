//! Decoding benchmarks.
//!
//! - `poll_response/*`: replies taken off a read buffer by
//!   [`Connection::poll_response`], with the matching commands already in
//!   flight. Each iteration gets a fresh connection and a pre-built buffer
//!   of pipelined replies (built by `iter_batched`'s untimed setup), so only
//!   the polling is timed.
//! - `parse_frame/*`: the stateless framing alone.
//! - `stats/*`: typing a `stats` body.
//!
//! Run with `cargo bench -p beanstalk-proto --bench decode`.

use std::hint::black_box;

use beanstalk_proto::cmd::{Put, Reserve, Stats};
use beanstalk_proto::frame::{Limits, parse_frame};
use beanstalk_proto::stats::ServerStats;
use beanstalk_proto::{Config, Connection, PutOptions, Request, WriteBuf};
use bytes::{Bytes, BytesMut};
use criterion::{BatchSize, Criterion, Throughput, criterion_main};

/// The reply of beanstalkd 1.12 to `stats`, byte for byte (`OK 956` and body).
const STATS_1_12: &[u8] = include_bytes!("stats-1.12.bin");

/// A connection with `n` copies of `request` in flight.
fn in_flight<R: Request>(config: Config, request: &R, n: usize) -> Connection {
    let mut conn = Connection::new(config);
    let mut out = WriteBuf::new();
    for _ in 0..n {
        conn.send(request, &mut out).expect("a valid command");
    }
    conn
}

/// `reply` repeated `n` times, as one read buffer would hold them.
fn replies(reply: &[u8], n: usize) -> Vec<u8> {
    reply.repeat(n)
}

/// A `RESERVED` reply with a `len`-byte body.
fn reserved(len: usize) -> Vec<u8> {
    let mut reply = format!("RESERVED 12345 {len}\r\n").into_bytes();
    reply.extend((0..len).map(|i| b'a' + (i % 26) as u8));
    reply.extend_from_slice(b"\r\n");
    reply
}

/// Benchmarks polling `n` pipelined replies (`wire`) to `request`.
fn bench_poll<R: Request>(
    c: &mut Criterion,
    name: &str,
    config: Config,
    request: &R,
    n: usize,
    wire: &[u8],
    throughput: Throughput,
) {
    let mut group = c.benchmark_group("poll_response");
    group.throughput(throughput);
    group.bench_function(name, |b| {
        b.iter_batched(
            || (in_flight(config, request, n), BytesMut::from(wire)),
            |(mut conn, mut src)| {
                for _ in 0..n {
                    let reply = conn.poll_response(&mut src).expect("a valid reply");
                    black_box(reply.expect("a whole reply"));
                }
                assert!(src.is_empty());
                (conn, src)
            },
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

fn poll_response(c: &mut Criterion) {
    const BATCH: usize = 1_000;

    let put = Put::new("x", PutOptions::default()).expect("a valid put");
    let wire = replies(b"INSERTED 12345\r\n", BATCH);
    let elements = Throughput::Elements(BATCH as u64);
    bench_poll(
        c,
        "inserted",
        Config::default(),
        &put,
        BATCH,
        &wire,
        elements,
    );

    let wire = replies(&reserved(100), BATCH);
    let bytes = Throughput::Bytes(wire.len() as u64);
    bench_poll(
        c,
        "reserved_100B",
        Config::default(),
        &Reserve,
        BATCH,
        &wire,
        bytes,
    );

    // 64 KiB is one byte over beanstalkd's default max-job-size.
    const LARGE: usize = 64 * 1024;
    const LARGE_BATCH: usize = 16;
    let config = Config::default().max_job_size(LARGE as u32);
    let wire = replies(&reserved(LARGE), LARGE_BATCH);
    let bytes = Throughput::Bytes(wire.len() as u64);
    bench_poll(
        c,
        "reserved_64KiB",
        config,
        &Reserve,
        LARGE_BATCH,
        &wire,
        bytes,
    );

    const STATS_BATCH: usize = 100;
    let wire = replies(STATS_1_12, STATS_BATCH);
    let bytes = Throughput::Bytes(wire.len() as u64);
    bench_poll(
        c,
        "stats_1.12",
        Config::default(),
        &Stats,
        STATS_BATCH,
        &wire,
        bytes,
    );
}

fn frame(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse_frame");
    let limits = Limits::default();
    group.throughput(Throughput::Elements(1));
    group.bench_function("inserted", |b| {
        b.iter(|| parse_frame(black_box(b"INSERTED 12345\r\n"), &limits));
    });
    group.throughput(Throughput::Bytes(STATS_1_12.len() as u64));
    group.bench_function("stats_1.12", |b| {
        b.iter(|| parse_frame(black_box(STATS_1_12), &limits));
    });
    group.finish();
}

fn stats(c: &mut Criterion) {
    let start = STATS_1_12
        .iter()
        .position(|&b| b == b'\n')
        .expect("a reply line")
        + 1;
    let body = Bytes::from_static(&STATS_1_12[start..STATS_1_12.len() - 2]);
    let mut group = c.benchmark_group("stats");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("parse_1.12", |b| {
        b.iter(|| ServerStats::parse(black_box(body.clone())));
    });
    group.finish();
}

/// What `criterion_group!` would generate, but documented and private.
fn benches() {
    let mut c = Criterion::default().configure_from_args();
    poll_response(&mut c);
    frame(&mut c);
    stats(&mut c);
}

criterion_main!(benches);
