//! Encoding benchmarks: commands per second into a [`WriteBuf`].
//!
//! - `encode/*`: [`Request::encode`] alone, 1,000 commands per iteration
//!   into one buffer that is then cleared.
//! - `send/*`: the full [`Connection::send`] path (validation, encoding,
//!   queueing the reply), 1,000 commands into a fresh connection per
//!   iteration (set up untimed by `iter_batched`).
//!
//! The 64 KiB body is shared [`Bytes`], so it is queued by reference (the
//! zero-copy path) rather than copied. Run with
//! `cargo bench -p beanstalk-proto --bench encode`.

use std::hint::black_box;

use beanstalk_proto::cmd::{Delete, Put};
use beanstalk_proto::{Config, Connection, PutOptions, Request, WriteBuf};
use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_main};

const BATCH: usize = 1_000;

fn bench_encode<R: Request>(c: &mut Criterion, name: &str, request: &R) {
    let mut group = c.benchmark_group("encode");
    group.throughput(Throughput::Elements(BATCH as u64));
    let mut out = WriteBuf::new();
    group.bench_function(name, |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                black_box(request).encode(&mut out);
            }
            black_box(&out);
            out.clear();
        });
    });
    group.finish();
}

fn bench_send<R: Request>(c: &mut Criterion, name: &str, config: Config, request: &R) {
    let mut group = c.benchmark_group("send");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function(name, |b| {
        b.iter_batched(
            || (Connection::new(config), WriteBuf::new()),
            |(mut conn, mut out)| {
                for _ in 0..BATCH {
                    black_box(
                        conn.send(black_box(request), &mut out)
                            .expect("a valid command"),
                    );
                }
                (conn, out)
            },
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

/// What `criterion_group!` would generate, but documented and private.
fn benches() {
    let mut c = Criterion::default().configure_from_args();
    let c = &mut c;
    let body = [b'x'; 100];
    let put_100 = Put::new(&body, PutOptions::default()).expect("a valid put");
    let large = Bytes::from(vec![b'x'; 64 * 1024]);
    let put_64k = Put::new(large, PutOptions::default()).expect("a valid put");
    let delete = Delete::new(12_345);
    let large_jobs = Config::default().max_job_size(64 * 1024);

    bench_encode(c, "put_100B", &put_100);
    bench_encode(c, "delete", &delete);
    bench_encode(c, "put_64KiB_shared", &put_64k);

    bench_send(c, "put_100B", Config::default(), &put_100);
    bench_send(c, "delete", Config::default(), &delete);
    bench_send(c, "put_64KiB_shared", large_jobs, &put_64k);
}

criterion_main!(benches);
