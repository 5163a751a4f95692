//! The shared-connection bookkeeping, fed byte literals: what the driver is
//! given to write, and when, as replies come in.

use beanstalk_proto::cmd::{Delete, Put, Quit, Use};
use beanstalk_proto::mux::{Mux, follow_use};
use beanstalk_proto::{CommandError, Config, Error, PutOptions, Response, Tube, WriteBuf};
use bytes::{Buf, BytesMut};

type Delivered = Vec<(u32, Result<Response, Error>)>;

fn put(body: &str) -> Put<'_> {
    Put::new(body, PutOptions::default()).unwrap()
}

/// Takes what the mux hands out and "writes" it all; returns the bytes.
fn write_out(mux: &mut Mux<u32>) -> Vec<u8> {
    let mut out = WriteBuf::new();
    mux.take_output(&mut out);
    let bytes = out.copy_to_bytes(out.remaining());
    bytes.to_vec()
}

fn replies(mux: &mut Mux<u32>, text: &str, delivered: &mut Delivered) {
    let mut rbuf = BytesMut::from(text.as_bytes());
    mux.dispatch(&mut rbuf, |caller, reply| delivered.push((caller, reply)))
        .unwrap();
    assert!(rbuf.is_empty());
}

/// A mux with 16 puts written and unanswered, callers 0 to 15.
fn busy_mux() -> Mux<u32> {
    let mut mux = Mux::new(Config::default());
    let tube = Tube::DEFAULT;
    for caller in 0..16 {
        mux.enqueue(&tube, &put("a"), caller).unwrap();
    }
    assert_eq!(
        write_out(&mut mux).len(),
        16 * b"put 1024 0 60 1\r\na\r\n".len()
    );
    mux
}

#[test]
fn commands_queued_while_the_server_is_busy_leave_together_in_order() {
    let mut mux = busy_mux();
    let tube = Tube::DEFAULT;
    let mut delivered = Delivered::new();
    for (caller, body) in (16..20).zip(["b", "c", "d", "e"]) {
        mux.enqueue(&tube, &put(body), caller).unwrap();
        assert!(write_out(&mut mux).is_empty(), "held");
    }
    replies(&mut mux, "INSERTED 1\r\n", &mut delivered);
    assert_eq!(
        write_out(&mut mux),
        b"put 1024 0 60 1\r\nb\r\nput 1024 0 60 1\r\nc\r\nput 1024 0 60 1\r\nd\r\nput 1024 0 60 1\r\ne\r\n"
    );
    let answers: String = (2..=20).map(|id| format!("INSERTED {id}\r\n")).collect();
    replies(&mut mux, &answers, &mut delivered);
    let callers: Vec<u32> = delivered.iter().map(|(caller, _)| *caller).collect();
    assert_eq!(callers, (0..20).collect::<Vec<_>>());
    assert!(mux.is_idle());
}

#[test]
fn a_large_backlog_is_not_held() {
    let mut mux = busy_mux();
    let tube = Tube::DEFAULT;
    let body = "x".repeat(40_000);
    let large = put(&body);
    mux.enqueue(&tube, &large, 16).unwrap();
    assert!(write_out(&mut mux).is_empty(), "held");
    mux.enqueue(&tube, &large, 17).unwrap();
    assert!(
        write_out(&mut mux).len() > 80_000,
        "64 KiB are written at once"
    );
}

#[test]
fn a_held_quit_completes_after_the_replies_before_it_and_is_still_written() {
    let mut mux = busy_mux();
    let tube = Tube::DEFAULT;
    let mut delivered = Delivered::new();
    mux.enqueue(&tube, &Quit, 16).unwrap();
    assert!(write_out(&mut mux).is_empty(), "held");
    let answers: String = (1..=16).map(|id| format!("INSERTED {id}\r\n")).collect();
    replies(&mut mux, &answers, &mut delivered);
    assert_eq!(delivered.len(), 17, "the quit completed too");
    assert_eq!(write_out(&mut mux), b"quit\r\n");
}

#[test]
fn a_failure_answers_held_callers_too() {
    let mut mux = busy_mux();
    let tube = Tube::DEFAULT;
    mux.enqueue(&tube, &put("b"), 16).unwrap();
    assert!(write_out(&mut mux).is_empty(), "held");
    let mut delivered = Delivered::new();
    mux.fail(
        beanstalk_proto::ProtocolError::Abandoned,
        Some(CommandError::Closed.into()),
        |caller, reply| delivered.push((caller, reply)),
    );
    assert_eq!(delivered.len(), 17);
    assert!(delivered.iter().all(|(_, reply)| reply.is_err()));
    assert!(write_out(&mut mux).is_empty());
    assert!(!mux.has_output());
}

/// Lets one caller's replies through `follow_use`, as a handle does.
fn answer_handle(
    mux: &mut Mux<u32>,
    text: &str,
    handle: &mut Tube,
) -> Vec<Result<Response, Error>> {
    let mut delivered = Delivered::new();
    replies(mux, text, &mut delivered);
    delivered
        .into_iter()
        .map(|(_, reply)| {
            follow_use(handle, &reply);
            reply
        })
        .collect()
}

#[test]
fn a_refused_use_leaves_the_handle_and_its_next_job_where_they_were() {
    let mut mux: Mux<u32> = Mux::new(Config::default());
    let mut handle = Tube::DEFAULT;
    mux.enqueue(&handle, &Use::new("emails").unwrap(), 1)
        .unwrap();
    assert_eq!(write_out(&mut mux), b"use emails\r\n");
    answer_handle(&mut mux, "OUT_OF_MEMORY\r\n", &mut handle);
    assert_eq!(handle, Tube::DEFAULT, "the server stayed on default");

    mux.enqueue(&handle, &put("x"), 2).unwrap();
    // Where the connection is after a refused `use` is said again.
    assert_eq!(
        write_out(&mut mux),
        b"use default\r\nput 1024 0 60 1\r\nx\r\n"
    );
}

#[test]
fn a_refused_use_does_not_send_another_handles_job_to_the_wrong_tube() {
    let mut mux: Mux<u32> = Mux::new(Config::default());
    let mut first = Tube::DEFAULT;
    let second = Tube::new("emails").unwrap();
    mux.enqueue(&first, &Use::new("emails").unwrap(), 1)
        .unwrap();
    // Queued before the refusal is known: it must not count on it.
    mux.enqueue(&second, &put("x"), 2).unwrap();
    assert_eq!(
        write_out(&mut mux),
        b"use emails\r\nuse emails\r\nput 1024 0 60 1\r\nx\r\n"
    );
    let replies = answer_handle(
        &mut mux,
        "OUT_OF_MEMORY\r\nUSING emails\r\nINSERTED 3\r\n",
        &mut first,
    );
    assert_eq!(first, Tube::DEFAULT);
    assert!(matches!(
        replies[..],
        [Ok(Response::Word(_)), Ok(Response::Inserted(3))]
    ));
}

#[test]
fn a_confirmed_use_moves_the_handle_and_costs_its_next_job_no_second_use() {
    let mut mux: Mux<u32> = Mux::new(Config::default());
    let mut handle = Tube::DEFAULT;
    mux.enqueue(&handle, &Use::new("emails").unwrap(), 1)
        .unwrap();
    assert_eq!(write_out(&mut mux), b"use emails\r\n");
    answer_handle(&mut mux, "USING emails\r\n", &mut handle);
    assert_eq!(handle.as_str(), "emails");

    mux.enqueue(&handle, &put("x"), 2).unwrap();
    assert_eq!(write_out(&mut mux), b"put 1024 0 60 1\r\nx\r\n");
}

#[test]
fn a_refused_command_sends_no_use_either() {
    // Past the configured job size: refused before anything is queued,
    // the `use` its handle's tube would need included.
    let mut mux: Mux<u32> = Mux::new(Config::default());
    let body = vec![b'x'; 70_000];
    let put = Put::new(&body[..], PutOptions::default()).unwrap();
    let error = mux.enqueue(&Tube::new("a").unwrap(), &put, 1).unwrap_err();
    assert!(
        matches!(error, Error::Command(CommandError::JobTooBig { .. })),
        "{error}"
    );
    assert!(write_out(&mut mux).is_empty());
    assert!(mux.is_idle());
    assert_eq!(mux.connection().in_flight(), 0);
}

/// A non-blocking driver whose socket took only part of its last output
/// takes more before the rest is written: the new commands go on the wire
/// after the old ones, in the order the replies are matched in.
#[test]
fn output_taken_before_the_last_was_all_written_goes_out_after_it() {
    let mut mux: Mux<u32> = Mux::new(Config::default());
    let tube = Tube::DEFAULT;
    let mut out = WriteBuf::new();
    mux.enqueue(&tube, &put("first"), 1).unwrap();
    mux.take_output(&mut out);
    // The socket would block after 10 bytes: the put is cut mid-line.
    let mut wire = out.copy_to_bytes(10).to_vec();
    mux.enqueue(&tube, &Delete::new(7), 2).unwrap();
    mux.take_output(&mut out);
    while out.has_remaining() || mux.has_output() {
        wire.extend_from_slice(&out.copy_to_bytes(out.remaining()));
        mux.take_output(&mut out);
    }
    assert_eq!(
        String::from_utf8_lossy(&wire),
        "put 1024 0 60 5\r\nfirst\r\ndelete 7\r\n"
    );
    let mut delivered = Delivered::new();
    replies(&mut mux, "INSERTED 3\r\nDELETED\r\n", &mut delivered);
    assert!(matches!(
        delivered[..],
        [(1, Ok(Response::Inserted(3))), (2, Ok(Response::Word(_)))]
    ));
}
