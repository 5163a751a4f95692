//! `Batch::should_send`: fill to a cap, then refill only once half of it
//! is answered, in bytes or in commands.

use beanstalk_proto::batch::{
    Batch, MAX_SHORT_REPLIES, MAX_UNANSWERED_BYTES, MAX_UNANSWERED_SHORT_REPLY_BYTES,
};
use beanstalk_proto::cmd::{Delete, Peek, Put, Use};
use beanstalk_proto::{Connection, PutOptions, Request, WriteBuf};
use bytes::BytesMut;

/// Feeds `reply` to the oldest command in flight.
fn answer_one<R: Request>(batch: &mut Batch<R>, conn: &mut Connection, reply: &[u8]) {
    let mut input = BytesMut::from(reply);
    let (token, reply) = conn.poll_response(&mut input).unwrap().unwrap();
    batch.answer(token, reply);
}

/// Sends `request(n)` for n = 0, 1, ... while the batch says it is worth
/// it; returns how many went.
fn send_while_worth_it<R: Request>(
    batch: &mut Batch<R>,
    conn: &mut Connection,
    out: &mut WriteBuf,
    mut request: impl FnMut() -> R,
) -> usize {
    let mut sent = 0;
    while batch.should_send() {
        batch.send(conn, &request(), out);
        sent += 1;
    }
    sent
}

/// Commands whose replies may carry bodies stop at 128 KiB unanswered and
/// refill once half of that is answered, up to the cap again.
#[test]
fn body_replies_refill_from_half_the_byte_cap() {
    let (mut conn, mut out) = (Connection::default(), WriteBuf::new());
    let mut batch = Batch::with_capacity(100_000);
    let peek = || Peek::new(1_000_000); // "peek 1000000\r\n": 14 bytes
    let sent = send_while_worth_it(&mut batch, &mut conn, &mut out, peek);
    assert_eq!(
        sent,
        MAX_UNANSWERED_BYTES / 14,
        "as many as fit, not one more"
    );
    assert!(!batch.can_send());

    // One answer frees room, but not enough to be worth a write.
    answer_one(&mut batch, &mut conn, b"NOT_FOUND\r\n");
    assert!(batch.can_send() && !batch.should_send());
    let mut answered = 1;
    while !batch.should_send() {
        answer_one(&mut batch, &mut conn, b"NOT_FOUND\r\n");
        answered += 1;
    }
    // Half the commands that filled the cap are answered, or half its
    // bytes, whichever comes first.
    let half_the_bytes = sent - (MAX_UNANSWERED_BYTES / 2) / 14;
    assert_eq!(answered, (sent / 2).min(half_the_bytes));

    // The refill goes on up to the cap again: one large write.
    let refill = send_while_worth_it(&mut batch, &mut conn, &mut out, peek);
    assert_eq!(refill, answered);
    assert!(!batch.can_send());
}

/// Small commands with one-line replies stop at 4,096 unanswered (so their
/// replies fit the client's receive buffer) and refill from half of that.
#[test]
fn short_replies_stop_at_the_command_cap() {
    let (mut conn, mut out) = (Connection::default(), WriteBuf::new());
    let mut batch = Batch::with_capacity(100_000);
    let delete = || Delete::new(1_000_000); // 16 bytes: the byte cap is far
    let sent = send_while_worth_it(&mut batch, &mut conn, &mut out, delete);
    assert_eq!(sent, MAX_SHORT_REPLIES);
    assert!(sent * 16 < MAX_UNANSWERED_SHORT_REPLY_BYTES);
    let mut answered = 0;
    while !batch.should_send() {
        answer_one(&mut batch, &mut conn, b"DELETED\r\n");
        answered += 1;
    }
    assert_eq!(answered, MAX_SHORT_REPLIES / 2);
}

/// Large puts fill the 256 KiB cap with four, never overshooting it; the
/// refill waits until two of them are answered, so each write carries
/// two, while the server still has two to work on.
#[test]
fn large_puts_refill_several_at_a_time() {
    let body = vec![b'x'; 60_000];
    let (mut conn, mut out) = (Connection::default(), WriteBuf::new());
    let mut batch: Batch<Put<'_>> = Batch::with_capacity(100);
    let put = || Put::new(&body[..], PutOptions::default()).unwrap();
    let sent = send_while_worth_it(&mut batch, &mut conn, &mut out, put);
    assert_eq!(sent, MAX_UNANSWERED_SHORT_REPLY_BYTES / 60_017);
    assert_eq!(sent, 4);
    for _ in 0..10 {
        answer_one(&mut batch, &mut conn, b"INSERTED 1\r\n");
        assert!(!batch.should_send(), "three puts still waiting");
        answer_one(&mut batch, &mut conn, b"INSERTED 1\r\n");
        assert!(batch.should_send(), "two puts left: time to refill");
        assert_eq!(send_while_worth_it(&mut batch, &mut conn, &mut out, put), 2);
    }
}

/// Puts of 100 KB: two fill the cap (a third would take it to 300 KB),
/// and each answer refills one, so the server always has the next to read.
#[test]
fn very_large_puts_keep_two_unanswered() {
    let body = vec![b'x'; 100_000];
    let config = beanstalk_proto::Config::default().max_job_size(1 << 20);
    let (mut conn, mut out) = (Connection::new(config), WriteBuf::new());
    let mut batch: Batch<Put<'_>> = Batch::with_capacity(100);
    let put = || Put::new(&body[..], PutOptions::default()).unwrap();
    assert_eq!(send_while_worth_it(&mut batch, &mut conn, &mut out, put), 2);
    for _ in 0..10 {
        answer_one(&mut batch, &mut conn, b"INSERTED 1\r\n");
        assert!(batch.should_send(), "one put left: time to refill");
        assert_eq!(send_while_worth_it(&mut batch, &mut conn, &mut out, put), 1);
    }
}

/// A command larger than half the cap goes alone, and the next one goes as
/// soon as the server is down to one.
#[test]
fn huge_commands_refill_when_one_is_left() {
    let body = vec![b'x'; 200_000];
    let config = beanstalk_proto::Config::default().max_job_size(1 << 20);
    let (mut conn, mut out) = (Connection::new(config), WriteBuf::new());
    let mut batch: Batch<Put<'_>> = Batch::with_capacity(10);
    let put = || Put::new(&body[..], PutOptions::default()).unwrap();
    assert_eq!(send_while_worth_it(&mut batch, &mut conn, &mut out, put), 2);
    answer_one(&mut batch, &mut conn, b"INSERTED 1\r\n");
    assert!(batch.should_send());
}

/// `Run::replies_wanted`: exactly the replies after which `fill` sends
/// again (capped at `MOST_REPLIES_AWAITED`), and all of them once every
/// request is sent.
#[test]
fn a_run_wants_the_replies_that_let_it_send_again() {
    use beanstalk_proto::batch::Run;
    use beanstalk_proto::read_low_water::{MOST_REPLIES_AWAITED, ReadLowWater};

    /// Sends `total` puts of `body_len` bytes through a run, answering
    /// one reply at a time, and checks every `replies_wanted` on the way.
    fn check(body_len: usize, total: usize) {
        let (mut conn, mut out) = (Connection::default(), WriteBuf::new());
        let mut mark = ReadLowWater::default();
        let body = vec![b'x'; body_len];
        let mut run =
            Run::new((0..total).map(|_| Put::new(&body[..], PutOptions::default()).unwrap()));
        let mut replies = 0;
        while run.fill(&mut conn, &mut out, &mut mark) {
            out.clear();
            let wanted = run.replies_wanted();
            let due = conn.short_replies_due(usize::MAX);
            assert!(
                (1..=MOST_REPLIES_AWAITED).contains(&wanted),
                "{body_len}: {wanted}"
            );
            assert!(wanted <= due, "{body_len}: {wanted} of {due}");
            let all_sent = replies + due == total;
            for answered in 1..=wanted {
                let mut input = BytesMut::from(format!("INSERTED {replies}\r\n").as_bytes());
                let (token, reply) = conn.poll_response(&mut input).unwrap().unwrap();
                run.answer(&conn, Ok((token, reply)));
                replies += 1;
                run.fill(&mut conn, &mut out, &mut mark);
                let sent_again = !out.is_empty();
                if answered < wanted {
                    assert!(!sent_again, "{body_len}: sent after {answered} of {wanted}");
                } else if !all_sent && wanted < MOST_REPLIES_AWAITED {
                    assert!(sent_again, "{body_len}: nothing sent after {wanted}");
                }
            }
        }
        assert_eq!(replies, total);
    }

    check(60_000, 23); // five fill the window; two replies are half of them
    check(100, 5_000); // thousands in flight: the cap of ten
    check(100, 7); // everything sent at once: all seven
}

/// `use` replies name the tube again (`USING <name>`), as long as the
/// command: a batch of them keeps the smaller cap, so their replies fit
/// where the server writes them.
#[test]
fn uses_with_long_names_keep_the_smaller_cap() {
    let (mut conn, mut out) = (Connection::default(), WriteBuf::new());
    let mut batch = Batch::with_capacity(10_000);
    let name = "t".repeat(200);
    let command = format!("use {name}\r\n").len();
    let sent = send_while_worth_it(&mut batch, &mut conn, &mut out, || {
        Use::new(name.as_str()).unwrap()
    });
    assert_eq!(sent, MAX_UNANSWERED_BYTES / command);
    let replies = sent * format!("USING {name}\r\n").len();
    assert!(
        replies <= MAX_UNANSWERED_BYTES + 2 * sent,
        "{replies} bytes of replies"
    );
}
