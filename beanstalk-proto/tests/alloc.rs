//! Allocation counts, with a counting global allocator: decoding bodiless
//! replies allocates nothing, decoding replies with bodies costs a constant
//! independent of their number, and encoding into a pre-grown buffer
//! allocates nothing.
//!
//! Counts are kept per thread, so the test harness's other threads (and
//! other tests running in parallel in this binary) do not disturb them.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use beanstalk_proto::{Connection, PutOptions, Request, Response, WriteBuf, cmd};
use bytes::{Buf, BytesMut};

/// Counts every allocation and reallocation made by the current thread.
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn bump() {
    // `try_with`: the thread-local may already be gone while a thread exits.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: every method forwards to `System` with the caller's arguments.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        bump();
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        bump();
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        bump();
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` and returns its result and how many allocations it made on this
/// thread.
fn count<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let before = ALLOCATIONS.with(Cell::get);
    let value = f();
    let after = ALLOCATIONS.with(Cell::get);
    (value, after - before)
}

#[test]
fn the_counter_counts() {
    let (v, n) = count(|| vec![1u8; 10]);
    assert_eq!(n, 1);
    let (_, n) = count(|| drop(v));
    assert_eq!(n, 0);
}

/// Sends `n` commands (alternating delete and put) and returns the
/// connection and a buffer holding all `n` bodiless replies.
fn bodiless(n: usize) -> (Connection, BytesMut) {
    let mut conn = Connection::default();
    let mut out = WriteBuf::new();
    let put = cmd::Put::new("x", PutOptions::default()).unwrap();
    let mut src = BytesMut::with_capacity(n * 16);
    for i in 0..n {
        if i % 2 == 0 {
            conn.send(&cmd::Delete::new(i as u64), &mut out).unwrap();
            src.extend_from_slice(b"DELETED\r\n");
        } else {
            conn.send(&put, &mut out).unwrap();
            src.extend_from_slice(format!("INSERTED {i}\r\n").as_bytes());
        }
    }
    (conn, src)
}

#[test]
fn decoding_bodiless_replies_allocates_nothing() {
    const N: usize = 10_000;
    let (mut conn, mut src) = bodiless(N);
    // Warm-up: the first reply (nothing is lazily set up, but measure only
    // the steady state as promised).
    let (first, warm_up) = count(|| conn.poll_response(&mut src).unwrap().unwrap());
    assert_eq!(first.1, Response::Word(beanstalk_proto::ReplyWord::Deleted));
    let ((decoded, ids), allocations) = count(|| {
        let mut decoded = 0usize;
        let mut ids = 0u64;
        while let Some((_, response)) = conn.poll_response(&mut src).unwrap() {
            match response {
                Response::Inserted(_) => ids += cmd::Put::from_response(response).unwrap().id,
                other => cmd::Delete::from_response(other).unwrap(),
            }
            decoded += 1;
        }
        (decoded, ids)
    });
    println!("bodiless: warm-up reply {warm_up} allocations, next {decoded} replies {allocations}");
    assert_eq!(decoded, N - 1);
    assert_eq!(ids, (1..N as u64).step_by(2).sum());
    assert!(src.is_empty());
    assert_eq!(conn.in_flight(), 0);
    assert_eq!(allocations, 0, "bodiless replies must not allocate");
}

/// Decodes `n` RESERVED replies with 100-byte bodies from one pre-filled
/// buffer; returns the allocations made while polling.
fn decode_jobs(n: usize) -> u64 {
    let mut conn = Connection::default();
    let mut out = WriteBuf::new();
    let body = [b'j'; 100];
    let mut src = BytesMut::with_capacity(n * 128);
    for i in 0..n {
        conn.send(&cmd::Reserve, &mut out).unwrap();
        src.extend_from_slice(format!("RESERVED {i} 100\r\n").as_bytes());
        src.extend_from_slice(&body);
        src.extend_from_slice(b"\r\n");
    }
    let mut jobs = Vec::with_capacity(n);
    let (decoded, allocations) = count(|| {
        while let Some((_, response)) = conn.poll_response(&mut src).unwrap() {
            let job = cmd::Reserve::from_response(response).unwrap();
            jobs.push(job);
        }
        jobs.len()
    });
    assert_eq!(decoded, n);
    assert!(
        jobs.iter()
            .enumerate()
            .all(|(i, j)| j.id == i as u64 && j.body[..] == body)
    );
    // Bodies are views into the one read buffer: consecutive jobs' bodies
    // are 100 + 2 + the next line apart in memory, not separate copies.
    let first = jobs[0].body.as_ptr() as usize;
    let second = jobs[1].body.as_ptr() as usize;
    assert_eq!(second - first, 100 + 2 + "RESERVED 1 100\r\n".len());
    let ((), drops) = count(|| drop(jobs));
    assert_eq!(drops, 0);
    allocations
}

#[test]
fn decoding_replies_with_bodies_costs_a_constant() {
    let small = decode_jobs(1_000);
    let large = decode_jobs(10_000);
    println!("with bodies: N=1,000 -> {small} allocations, N=10,000 -> {large} allocations");
    assert_eq!(small, large, "independent of N");
    assert!(large <= 1, "at most the one promotion of the read buffer");
}

#[test]
fn encoding_into_a_pre_grown_buffer_allocates_nothing() {
    const N: usize = 10_000;
    let body = [b'p'; 100];
    let mut conn = Connection::default();
    let mut out = WriteBuf::new();
    // Grow the write buffer and the in-flight queue once...
    for _ in 0..N {
        conn.send(
            &cmd::Put::new(&body, PutOptions::default()).unwrap(),
            &mut out,
        )
        .unwrap();
    }
    let grown = out.remaining();
    let mut src = BytesMut::new();
    for i in 0..N {
        src.extend_from_slice(format!("INSERTED {i}\r\n").as_bytes());
    }
    while conn.poll_response(&mut src).unwrap().is_some() {}
    assert_eq!(conn.in_flight(), 0);
    out.clear();

    // ...then encode N puts again through the connection: no allocation.
    let ((), via_send) = count(|| {
        for _ in 0..N {
            let put = cmd::Put::new(&body, PutOptions::default()).unwrap();
            conn.send(&put, &mut out).unwrap();
        }
    });
    assert_eq!(out.remaining(), grown);
    assert_eq!(out.chunk_count(), 1);
    out.clear();

    // And straight through Request::encode.
    let put = cmd::Put::new(&body, PutOptions::default()).unwrap();
    let ((), via_encode) = count(|| {
        for _ in 0..N {
            put.encode(&mut out);
        }
    });
    assert_eq!(out.remaining(), grown);
    println!("encoding {N} puts: via send {via_send} allocations, via encode {via_encode}");
    assert_eq!(via_send, 0);
    assert_eq!(via_encode, 0);
}

#[test]
fn a_shared_handles_command_allocates_nothing_once_buffers_have_grown() {
    use beanstalk_proto::Tube;
    use beanstalk_proto::mux::{Mux, ReplySlot, ReplyTicket};
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    const N: usize = 10_000;
    let body = [b'p'; 100];
    let put = cmd::Put::new(&body, PutOptions::default()).unwrap();
    let mut mux: Mux<ReplyTicket> = Mux::new(beanstalk_proto::Config::default());
    let tube = Tube::DEFAULT;
    let slot = ReplySlot::default();
    let mut out = WriteBuf::new();
    let replies: Vec<u8> = (0..2 * N)
        .flat_map(|i| format!("INSERTED {i}\r\n").into_bytes())
        .collect();
    let mut rbuf = BytesMut::with_capacity(64);
    let mut cx = Context::from_waker(Waker::noop());
    let mut offset = 0;
    // One command the way a shared handle and its driver run it: a ticket
    // from the handle's slot, the command queued, written, answered, and
    // the reply awaited.
    let mut one_command = || {
        let (ticket, wait) = slot.begin();
        mux.enqueue(&tube, &put, ticket).unwrap();
        mux.take_output(&mut out);
        out.advance(out.remaining());
        let end = offset + replies[offset..].iter().position(|&b| b == b'\n').unwrap() + 1;
        rbuf.extend_from_slice(&replies[offset..end]);
        offset = end;
        mux.dispatch(&mut rbuf, ReplyTicket::deliver).unwrap();
        let Poll::Ready(reply) = pin!(wait).poll(&mut cx) else {
            panic!("answered");
        };
        assert!(matches!(reply, Ok(Response::Inserted(_))));
    };
    for _ in 0..N {
        one_command();
    }
    let ((), allocations) = count(|| {
        for _ in 0..N {
            one_command();
        }
    });
    assert_eq!(allocations, 0, "{allocations} allocations for {N} commands");
}

/// `list-tube-used` is answered `USING <tube>`, a bodiless reply too: the
/// tube it names is the one the connection uses, whether the default or
/// one a `use` chose.
#[test]
fn list_tube_used_replies_allocate_nothing() {
    const N: usize = 1_000;
    for tube in ["default", "emails"] {
        let mut conn = Connection::default();
        let mut out = WriteBuf::new();
        if tube != "default" {
            conn.send(&cmd::Use::new(tube).unwrap(), &mut out).unwrap();
            let mut src = BytesMut::from(format!("USING {tube}\r\n").as_bytes());
            conn.poll_response(&mut src).unwrap().unwrap();
        }
        let mut src = BytesMut::with_capacity(N * 32);
        for _ in 0..N {
            conn.send(&cmd::ListTubeUsed, &mut out).unwrap();
            src.extend_from_slice(format!("USING {tube}\r\n").as_bytes());
        }
        let (decoded, allocations) = count(|| {
            let mut decoded = 0;
            while let Some((_, response)) = conn.poll_response(&mut src).unwrap() {
                assert_eq!(cmd::ListTubeUsed::from_response(response).unwrap(), tube);
                decoded += 1;
            }
            decoded
        });
        assert_eq!(decoded, N);
        assert_eq!(allocations, 0, "{N} replies naming {tube:?}");
    }
}
