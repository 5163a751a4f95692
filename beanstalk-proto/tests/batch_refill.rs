//! `Batch::should_send`: fill to the cap, then refill only from half of it.

use beanstalk_proto::batch::{Batch, MAX_UNANSWERED_BYTES};
use beanstalk_proto::cmd::Delete;
use beanstalk_proto::{Connection, WriteBuf};
use bytes::BytesMut;

/// Feeds one `DELETED` reply to the oldest command in flight.
fn answer_one(batch: &mut Batch<Delete>, conn: &mut Connection) {
    let mut input = BytesMut::from(&b"DELETED\r\n"[..]);
    let (token, reply) = conn.poll_response(&mut input).unwrap().unwrap();
    batch.answer(token, reply);
}

#[test]
fn refills_from_half_the_cap() {
    let (mut conn, mut out) = (Connection::default(), WriteBuf::new());
    let mut batch = Batch::with_capacity(100_000);
    let mut id = 1_000_000; // "delete 100000N\r\n": 16 bytes each
    let mut send_while_worth_it = |batch: &mut Batch<Delete>, conn: &mut Connection| {
        let mut sent = 0;
        while batch.should_send() {
            id += 1;
            batch.send(conn, &Delete::new(id), &mut out);
            sent += 1;
        }
        sent
    };
    let sent = send_while_worth_it(&mut batch, &mut conn);
    assert_eq!(sent, MAX_UNANSWERED_BYTES.div_ceil(16));
    assert!(!batch.can_send());

    // One answer frees room, but not enough to be worth a write.
    answer_one(&mut batch, &mut conn);
    assert!(batch.can_send() && !batch.should_send());
    let mut answered = 1;
    while !batch.should_send() {
        answer_one(&mut batch, &mut conn);
        answered += 1;
    }
    let unanswered = (sent - answered) * 16;
    assert!(unanswered <= MAX_UNANSWERED_BYTES / 2, "{unanswered}");
    assert!(unanswered + 16 > MAX_UNANSWERED_BYTES / 2, "{unanswered}");

    // The refill goes on up to the cap again: one large write.
    let refill = send_while_worth_it(&mut batch, &mut conn);
    assert_eq!(refill, answered);
    assert!(!batch.can_send());
}

/// Large commands (60 KB puts) refill as each is answered: waiting for half
/// the cap would leave the server a single one to work on.
#[test]
fn large_commands_refill_at_once() {
    use beanstalk_proto::PutOptions;
    use beanstalk_proto::cmd::Put;

    let body = vec![b'x'; 60_000];
    let (mut conn, mut out) = (Connection::default(), WriteBuf::new());
    let mut batch: Batch<Put<'_>> = Batch::with_capacity(10);
    let put = Put::new(&body[..], PutOptions::default()).unwrap();
    while batch.should_send() {
        batch.send(&mut conn, &put, &mut out);
    }
    assert!(!batch.can_send()); // three puts, about 180 KB
    let mut input = BytesMut::from(&b"INSERTED 1\r\n"[..]);
    let (token, reply) = conn.poll_response(&mut input).unwrap().unwrap();
    batch.answer(token, reply);
    assert!(
        batch.should_send(),
        "one answered 60 KB put is worth a refill"
    );
}
