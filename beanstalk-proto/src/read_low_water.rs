//! How many reply bytes a pipelining driver lets arrive before its read
//! wakes: the socket's receive low-water mark (`SO_RCVLOWAT`).
//!
//! beanstalkd writes each reply on its own, so a client that reads as soon
//! as anything arrives wakes for every reply or two: on loopback, 100,000
//! pipelined puts took about 50,000 reads, each a context switch and one
//! or two syscalls for the client (a readiness wait and a `recv` for the
//! async runtimes), and a wake-up the server's CPU pays for too. With many
//! commands in flight nothing is lost by letting a few replies gather: the
//! server still has the rest to work through. Waiting for 10 replies cuts
//! those reads to about 11,000.
//!
//! The mark must never ask for more than is sure to come, or the read would
//! wait for its timeout. Every reply to a command is at least as long as
//! the shortest reply that command can get
//! ([`CommandKind::shortest_reply`]: 10 bytes for a `put`, `BURIED 1\r\n`;
//! never less than [`SHORTEST_REPLY`], 8), so counting only commands that
//! are written (or, in a driver that writes while its read waits, being
//! written) and whose every reply is one short line the server gives at
//! once (`put`, `delete`, ...: [`CommandKind::has_short_reply`]), up to the
//! first that is not (a `reserve` may wait for a job, and its reply holds
//! back everything after it), `n` such commands bring at least the sum of
//! their shortest replies ([`Connection::least_reply_bytes`]). The oldest
//! is left out, since its reply may be partly read already. By default the
//! mark asks for the replies of half of them, and none below
//! [`FROM_REPLIES_DUE`] commands, where one command at a time keeps its
//! latency; a batch that says what it needs may ask for all but the oldest
//! (below); and a connection read with blocking `recv` calls never asks for
//! more than half of what is sure to come, because of how Linux wakes such
//! a call ([`ReadLowWater::for_blocking_reads`]). A peer that sends
//! something shorter than a reply is broken anyway; its bytes are read once
//! the mark is reached, the connection closes, or the reply timeout fails
//! the call.
//!
//! "Sure to come" says nothing of when. A server whose disk or uplink
//! slows down may send the oldest reply alone and the next ones seconds
//! later, so a reply can sit below the mark while its deadline runs out.
//! Every driver therefore reads what the socket holds when a reply's
//! deadline comes, past the mark (a non-blocking read returns whatever is
//! there; a blocking `recv` does so when its timeout runs out), and only a
//! reply still incomplete then is late: a reply that came in time is never
//! reported as a timeout, at the cost of reaching its caller as late as
//! its deadline on such a link.
//!
//! Nor may it ask for more than the server can send before it hears back
//! from the client. After a quiet spell the server's TCP restarts from a
//! congestion window of 10 segments, and a segment carries at least one
//! reply, so 10 replies ([`MOST_REPLIES_AWAITED`]) always arrive without
//! any acknowledgement. A larger mark can leave both sides waiting: the
//! server for an acknowledgement of replies the client has not read, the
//! client for replies the server may not send yet, until the delayed-ACK
//! timer fires. With a 1 KiB mark, bursts of 300 puts after 300 ms idle
//! took 7.8 ms instead of 1 ms; with 80 bytes they take what they took
//! with none.
//!
//! Replies with bodies (`reserve`, `peek`, `stats`) end the count, so a
//! pipeline that starts with one wakes at the first byte: one such reply
//! fills a read on its own, and in a sliding window of reservations,
//! waiting for 80 bytes cost more than it saved (same-core, a
//! reserve+delete window then sent about half as many commands per write,
//! and lost a quarter of its throughput).
//!
//! A pipelined batch (`execute_many`, [`Run`]) knows more than the count
//! of replies due: it can do nothing new until enough replies free room
//! in its window or, with everything sent, until all are in. It says so
//! before each read ([`ReadLowWater::want_replies`]), and the read waits
//! for that many shortest replies (no more than [`MOST_REPLIES_AWAITED`],
//! and one fewer than are due). That reaches where the count does not: four
//! 60 KB puts fill a window, and the batch refills after two replies
//! ([`Batch::should_send`]), so it wakes once per two puts instead of once
//! per put (10,000 puts: context switches per put 0.97 → 0.50, with no
//! `setsockopt` once the mark is set).
//! Replies a peer splits into segments shorter than a reply break the
//! congestion-window argument above: through a proxy that forwards a byte
//! per segment, a batch waits about 5 ms for an acknowledgement timer, as
//! pipelines of 32 or more did before.
//!
//! [`Run`]: crate::batch::Run
//! [`Batch::should_send`]: crate::batch::Batch::should_send
//!
//! Large commands change the count. The server reads a command whole before
//! it answers it, so the replies to four 60 KB puts come one by one, each
//! after the server has read another 60 KB; a shared connection whose
//! callers each wait for their put before the next then woke for every
//! reply and wrote each new put alone: a wake-up, a readiness wait, a read
//! and a write per put. So while the commands in flight carry
//! [`LARGE_BYTES_IN_FLIGHT`] or more, a read waits for half the replies due
//! from [`FROM_LARGE_REPLIES_DUE`] of them: two of four, and the two
//! callers answered then put again in one write. Counted at 8 bytes a
//! reply, two replies made a 16-byte mark that one `INSERTED 12345\r\n`
//! fills alone; counted at a `put`'s shortest reply, 10 bytes, the mark of
//! 20 waits for the second reply until job ids reach nine digits. 10,000
//! puts of 60 KB from four callers, job ids past 20,000, old and new
//! interleaved, medians of four: tokio's reads and writes per put 0.89 →
//! 0.50; client CPU per put same-core tokio 27.5 → 22.9 µs, smol 32.4 →
//! 25.3 µs, cross-core smol 39.2 → 31.7 µs (tokio 36.0 → 35.3 µs), at the
//! same throughput. Small commands keep [`FROM_REPLIES_DUE`]: with 64
//! callers of 100-byte puts, waiting from 4 due instead of 32 cut reads per
//! put by a third but cost same-core throughput a seventh (the
//! acknowledgements described below, against commands that cost the server
//! little).
//!
//! Shared connections' drivers use the mark too, with a cost same-core:
//! while a read waits for its mark, Linux acknowledges each arriving reply
//! at once (so that no sender waits on a delayed acknowledgement), and the
//! server, never held back by unacknowledged data, sends every reply in a
//! packet of its own instead of several together. When client and server
//! share a CPU, the server pays for those packets. Cross-core the drivers'
//! CPU per put fell by a quarter to a third at the same throughput;
//! same-core their CPU fell and their throughput dropped 4-10%.
//!
//! Where the replies come from changes the best mark. They wake the
//! client from the CPU that delivers them (on loopback, the server's). On
//! the client's own CPU, each wake-up is a context switch the shared CPU
//! pays for, and ten replies a wake-up saves most of them. From another
//! CPU it costs that CPU more if the client's CPU has gone idle and
//! halted: on a virtual machine whose idle CPUs halt at once, waking one
//! costs the waker an interrupt through the host, about 10 µs of its CPU,
//! and a client that waits for ten replies sleeps long enough to halt,
//! where one that waits for a reply or two is woken before it does.
//! 100,000 pipelined puts, server and client on two CPUs: 7,000 such
//! interrupts with ten replies a read, 3,000 with two, and runs 1-11%
//! shorter; on one CPU, two replies a read made runs 4-23% longer. So a
//! driver looks every [`CPU_CHECK_EVERY`] reads at which CPU its replies
//! come from ([`replies_from_another_cpu`]) and tells the mark
//! ([`ReadLowWater::set_replies_from_another_cpu`]): from another CPU a
//! read waits for at most [`MOST_REPLIES_AWAITED_ACROSS_CPUS`] replies.
//! [`update_on`] does all of it for a socket before each read.
//!
//! [`CommandKind::has_short_reply`]: crate::cmd::CommandKind::has_short_reply
//! [`CommandKind::shortest_reply`]: crate::cmd::CommandKind::shortest_reply
//!
//! ```
//! use beanstalk_proto::read_low_water::ReadLowWater;
//!
//! let mut mark = ReadLowWater::default();
//! assert_eq!(mark.next(1), None, "one command at a time: wake at the first byte");
//! assert_eq!(mark.next(1_000), Some(80), "wake once 10 short replies could be in");
//! assert_eq!(mark.next(40), None, "the same mark: no syscall to set it again");
//! assert_eq!(mark.next(3), Some(1), "a short pipeline: wake at the first byte");
//! ```

use crate::connection::Connection;
#[cfg(feature = "std")]
use crate::reply_watch::Unsent;

/// The shortest reply beanstalkd sends: `BURIED\r\n`, `KICKED\r\n` and
/// `PAUSED\r\n` have 8 bytes; every other reply has more.
pub const SHORTEST_REPLY: usize = 8;

/// Commands due to be answered from which a read waits for more than a
/// byte. Below this, a pipeline is short enough that waking per reply is
/// cheap, and its first replies come sooner.
pub const FROM_REPLIES_DUE: usize = 32;

/// Bytes of commands in flight from which a read waits for more than a
/// byte as soon as [`FROM_LARGE_REPLIES_DUE`] replies are due: the server
/// reads each large command whole before it answers, so its replies come
/// slowly, and a driver that wakes for each writes the next command alone
/// (see the module documentation).
pub const LARGE_BYTES_IN_FLIGHT: usize = 64 * 1024;

/// Commands due to be answered from which a read waits for more than a
/// byte while [`LARGE_BYTES_IN_FLIGHT`] are in flight: from 4, half the
/// replies due is two, more than the first byte brings anyway.
pub const FROM_LARGE_REPLIES_DUE: usize = 4;

/// The most replies a read waits for: as many as the server's initial
/// congestion window of 10 segments is sure to carry (see the module
/// documentation).
pub const MOST_REPLIES_AWAITED: usize = 10;

/// The most replies a read waits for while they come from another CPU:
/// few enough that the client is woken before its CPU halts (see the
/// module documentation).
pub const MOST_REPLIES_AWAITED_ACROSS_CPUS: usize = 2;

/// Reads between two looks at which CPU the replies come from: the
/// scheduler may move either side, and a look costs two syscalls.
pub const CPU_CHECK_EVERY: u32 = 128;

/// The receive low-water mark of one connection, as last set.
///
/// A driver calls [`ReadLowWater::next_for`] before each read, with the
/// commands whose replies are sure to come, and applies what it returns
/// (with [`set_on`]); [`update_on`] does both, and looks where the
/// replies come from when that is due. A new socket starts at 1 byte, and so does
/// a new `ReadLowWater`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLowWater {
    bytes: usize,
    /// Replies a batch needs before it can act again, for the next read
    /// only: see [`ReadLowWater::want_replies`].
    wanted: Option<usize>,
    /// The reads block in `recv`: see [`ReadLowWater::for_blocking_reads`].
    blocking_reads: bool,
    /// The replies last came from another CPU than the reader's.
    across_cpus: bool,
    /// Reads left before the next look at where replies come from.
    until_cpu_check: u32,
}

impl Default for ReadLowWater {
    fn default() -> Self {
        Self {
            bytes: 1,
            wanted: None,
            blocking_reads: false,
            across_cpus: false,
            until_cpu_check: 1,
        }
    }
}

impl ReadLowWater {
    /// The mark of a connection read with blocking `recv` calls rather than
    /// after readiness: it never asks for more than half the bytes the
    /// replies due are sure to bring ([`Connection::least_reply_bytes_to_come`]:
    /// the first reply's too, when none of it has been read).
    ///
    /// A blocking `recv` on Linux that finds fewer bytes than the mark
    /// takes them, then sleeps until as many bytes *more* than the mark are
    /// queued: the wake-up compares the mark with what arrived since, not
    /// with what the call holds. So if some replies are in before the call,
    /// the call needs the mark's worth from the rest, and a mark above half
    /// of what is coming can sleep until the read timeout with every reply
    /// in (five 60 KB puts due, a mark of four `put` replies, two replies
    /// in before the call: three left, 39 bytes, against 40). At half, the
    /// bytes in before the call are below the mark, so those still to come
    /// reach it. A readiness wait (`epoll`, `poll`) compares the whole
    /// queue with the mark and has no such limit.
    ///
    /// The first reply counts when none of it is in: four 60 KB puts due
    /// then make a mark of two replies (half of four). Counting only the
    /// three after it, as when part of it may be in, made a mark of a
    /// reply and a half, which one `INSERTED 12345\r\n` fills: a wake-up
    /// per put instead of per two (5,000 puts same-core: reads per put
    /// 0.90-0.99 → 0.50, client CPU a fifth lower).
    ///
    /// ```
    /// use beanstalk_proto::{cmd::Put, read_low_water::ReadLowWater, Connection, PutOptions, WriteBuf};
    ///
    /// let (mut conn, mut out) = (Connection::default(), WriteBuf::new());
    /// let put = Put::new(vec![b'x'; 60_000], PutOptions::default())?;
    /// for _ in 0..5 {
    ///     conn.send(&put, &mut out)?;
    /// }
    /// let mut readiness = ReadLowWater::default();
    /// readiness.want_replies(Some(5));
    /// assert_eq!(readiness.next_for(&conn), Some(40), "four replies after the first");
    /// let mut blocking = ReadLowWater::for_blocking_reads();
    /// blocking.want_replies(Some(5));
    /// assert_eq!(blocking.next_for(&conn), Some(25), "half of all five: none is in yet");
    /// // The first reply is partly in: half of the other four.
    /// conn.poll_response(&mut bytes::BytesMut::from(&b"INSERTED"[..]))?;
    /// blocking.want_replies(Some(5));
    /// assert_eq!(blocking.next_for(&conn), Some(20));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn for_blocking_reads() -> Self {
        Self {
            blocking_reads: true,
            ..Self::default()
        }
    }

    /// The mark as last set: a read wakes once this many bytes are in.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether the driver should look where its replies come from
    /// ([`replies_from_another_cpu`]) before this read and pass the answer
    /// to [`ReadLowWater::set_replies_from_another_cpu`]: true for a
    /// socket's second read, once the server's first reply is in (before
    /// that, the last bytes received are the handshake's, delivered on the
    /// client's CPU), and then every [`CPU_CHECK_EVERY`] reads.
    ///
    /// ```
    /// use beanstalk_proto::read_low_water::{ReadLowWater, CPU_CHECK_EVERY};
    ///
    /// let mut mark = ReadLowWater::default();
    /// assert!(!mark.cpu_check_due(), "the first read: nothing from the server yet");
    /// assert!(mark.cpu_check_due(), "the second");
    /// let looks = (0..2 * CPU_CHECK_EVERY).filter(|_| mark.cpu_check_due()).count();
    /// assert_eq!(looks, 2);
    /// ```
    pub fn cpu_check_due(&mut self) -> bool {
        if self.until_cpu_check == 0 {
            self.until_cpu_check = CPU_CHECK_EVERY - 1;
            true
        } else {
            self.until_cpu_check -= 1;
            false
        }
    }

    /// Records where the replies come from: `Some(true)` from another CPU
    /// than the reader's, so reads wait for at most
    /// [`MOST_REPLIES_AWAITED_ACROSS_CPUS`] replies; `Some(false)` from the
    /// reader's own CPU, or `None` (not known), for up to
    /// [`MOST_REPLIES_AWAITED`].
    ///
    /// ```
    /// use beanstalk_proto::{cmd::Put, read_low_water::ReadLowWater, Connection, PutOptions, WriteBuf};
    ///
    /// let (mut conn, mut out) = (Connection::default(), WriteBuf::new());
    /// let put = Put::new("x", PutOptions::default())?;
    /// for _ in 0..100 {
    ///     conn.send(&put, &mut out)?;
    /// }
    /// let mut mark = ReadLowWater::default();
    /// assert_eq!(mark.next_for(&conn), Some(100), "ten replies to `put`");
    /// mark.set_replies_from_another_cpu(Some(true));
    /// assert_eq!(mark.next_for(&conn), Some(20), "two");
    /// # Ok::<(), beanstalk_proto::CommandError>(())
    /// ```
    pub fn set_replies_from_another_cpu(&mut self, across: Option<bool>) {
        self.across_cpus = across == Some(true);
    }

    /// Whether the replies were last seen coming from another CPU than the
    /// reader's ([`ReadLowWater::set_replies_from_another_cpu`]); false
    /// until that is known.
    ///
    /// ```
    /// use beanstalk_proto::read_low_water::ReadLowWater;
    ///
    /// let mut mark = ReadLowWater::default();
    /// assert!(!mark.replies_across_cpus());
    /// mark.set_replies_from_another_cpu(Some(true));
    /// assert!(mark.replies_across_cpus());
    /// ```
    pub fn replies_across_cpus(&self) -> bool {
        self.across_cpus
    }

    /// The most replies a read waits for, given where they come from.
    fn most_replies_awaited(&self) -> usize {
        if self.across_cpus {
            MOST_REPLIES_AWAITED_ACROSS_CPUS
        } else {
            MOST_REPLIES_AWAITED
        }
    }

    /// The mark to set before the next read, when `replies_due` written
    /// commands are waiting for short replies the server gives at once
    /// ([`Connection::short_replies_due`]), or `None` to keep the current
    /// one. It changes only when it must
    /// come down (fewer replies due) or can at least double, so a steady
    /// pipeline costs no syscall per read. If applying the new mark fails,
    /// call [`ReadLowWater::reset`].
    pub fn next(&mut self, replies_due: usize) -> Option<usize> {
        self.apply(Self::target(replies_due))
    }

    /// Tells the next [`ReadLowWater::next_for`] that the reader can do
    /// nothing new before `replies` more replies are in ([`Run::replies_wanted`]),
    /// or with `None`, that it takes each reply as it comes. Only the next
    /// read uses it.
    ///
    /// A pipelined batch that has sent all its window allows only acts
    /// again once enough replies free room for a refill, or, with nothing
    /// left to send, once all are in; waking for each reply before that
    /// only costs a wake-up. This matters where the rule of
    /// [`FROM_REPLIES_DUE`] does not reach: a few large puts fill the
    /// window, so a batch of 60 KB puts refilled after three of its five
    /// replies (now two of four); waking at the second and the third
    /// instead of at each cut its context switches per put by a third.
    ///
    /// [`Run::replies_wanted`]: crate::batch::Run::replies_wanted
    ///
    /// ```
    /// use beanstalk_proto::{cmd::Put, read_low_water::ReadLowWater, Connection, PutOptions, WriteBuf};
    ///
    /// let (mut conn, mut out) = (Connection::default(), WriteBuf::new());
    /// let put = Put::new("x", PutOptions::default())?;
    /// for _ in 0..5 {
    ///     conn.send(&put, &mut out)?;
    /// }
    /// let mut mark = ReadLowWater::default();
    /// assert_eq!(mark.next_for(&conn), None, "5 replies due: wake at the first byte");
    /// mark.want_replies(Some(3));
    /// assert_eq!(mark.next_for(&conn), Some(30), "wake once 3 puts' shortest replies are in");
    /// assert_eq!(mark.next_for(&conn), Some(1), "only for one read");
    /// # Ok::<(), beanstalk_proto::CommandError>(())
    /// ```
    pub fn want_replies(&mut self, replies: Option<usize>) {
        self.wanted = replies;
    }

    /// Makes `target` the mark if it must come down or can at least double.
    fn apply(&mut self, target: usize) -> Option<usize> {
        if target < self.bytes || target >= self.bytes.saturating_mul(2) {
            self.bytes = target;
            Some(target)
        } else {
            None
        }
    }

    /// [`ReadLowWater::next`] for a connection whose commands in flight
    /// are all written, or are being written while the read waits: a
    /// shared connection's driver writes and reads at once, and only a
    /// server that stopped reading could hold those replies back, which
    /// the write timeout catches.
    ///
    /// While the commands in flight carry [`LARGE_BYTES_IN_FLIGHT`] or
    /// more, the mark asks for half the replies due from
    /// [`FROM_LARGE_REPLIES_DUE`] of them, instead of from
    /// [`FROM_REPLIES_DUE`].
    ///
    /// After [`ReadLowWater::want_replies`], the mark asks for that many
    /// replies instead (at most [`MOST_REPLIES_AWAITED`]), and for one
    /// fewer than are due, since the first may be partly read already.
    ///
    /// Replies from another CPU
    /// ([`ReadLowWater::set_replies_from_another_cpu`]) are awaited by
    /// [`MOST_REPLIES_AWAITED_ACROSS_CPUS`] at most.
    ///
    /// Call it once every whole reply has been taken from the read buffer
    /// ([`Connection::poll_response`] until `Ok(None)`): replies still in
    /// it count as due, and a mark asking for them would sleep until the
    /// deadline.
    ///
    /// Either way the replies awaited count as the shortest their commands
    /// can get ([`Connection::least_reply_bytes`]), so a read wakes early
    /// rather than late when replies are longer.
    ///
    /// ```
    /// use beanstalk_proto::{cmd::Put, read_low_water::ReadLowWater, Connection, PutOptions, WriteBuf};
    ///
    /// let (mut conn, mut out) = (Connection::default(), WriteBuf::new());
    /// let mut mark = ReadLowWater::default();
    /// let small = Put::new("x", PutOptions::default())?;
    /// for _ in 0..4 {
    ///     conn.send(&small, &mut out)?;
    /// }
    /// assert_eq!(mark.next_for(&conn), None, "4 small puts: wake at the first byte");
    /// let mut conn = Connection::default();
    /// let large = Put::new(vec![0; 60_000], PutOptions::default())?;
    /// for _ in 0..4 {
    ///     conn.send(&large, &mut out)?;
    /// }
    /// assert_eq!(mark.next_for(&conn), Some(20), "4 large puts: wake once 2 replies are in");
    /// # Ok::<(), beanstalk_proto::CommandError>(())
    /// ```
    pub fn next_for(&mut self, conn: &Connection) -> Option<usize> {
        if conn.in_flight() <= 1 {
            // One command at a time: whatever comes is its reply, so the
            // read wakes at the first byte, as the count below would find
            // after walking the commands in flight (a tenth of the user-space
            // instructions of a request-response `put`, callgrind).
            self.wanted = None;
            return self.apply(1);
        }
        // Enough to see FROM_REPLIES_DUE, and for blocking reads twice the
        // most replies awaited after the first.
        let due = conn.short_replies_due(FROM_REPLIES_DUE.max(2 * MOST_REPLIES_AWAITED + 1));
        let replies = match self.wanted.take() {
            Some(wanted) => wanted
                .min(due.saturating_sub(1))
                .min(self.most_replies_awaited()),
            None => {
                let from = if conn.bytes_in_flight() >= LARGE_BYTES_IN_FLIGHT {
                    FROM_LARGE_REPLIES_DUE
                } else {
                    FROM_REPLIES_DUE
                };
                Self::replies_awaited(due, from).min(self.most_replies_awaited())
            }
        };
        let mut bytes = conn.least_reply_bytes(replies);
        if self.blocking_reads {
            bytes = bytes.min(conn.least_reply_bytes_to_come(due) / 2);
        }
        self.apply(bytes.max(1))
    }

    /// Forgets the mark: applying it failed, or the connection has a new
    /// socket. The next [`ReadLowWater::next`] that wants more than a byte
    /// sets it again.
    pub fn reset(&mut self) {
        self.bytes = 1;
        self.wanted = None;
        // A new socket: look where its replies come from once they do.
        self.until_cpu_check = 1;
    }

    /// The mark `replies_due` commands of any kind call for.
    fn target(replies_due: usize) -> usize {
        (SHORTEST_REPLY * Self::replies_awaited(replies_due, FROM_REPLIES_DUE)).max(1)
    }

    /// How many replies a read waits for when `replies_due` are due: half
    /// of them from `from` due, none (the first byte) below.
    fn replies_awaited(replies_due: usize, from: usize) -> usize {
        if replies_due < from {
            0
        } else {
            (replies_due / 2).min(MOST_REPLIES_AWAITED)
        }
    }
}

/// Sets the receive low-water mark (`SO_RCVLOWAT`) of `socket` to `bytes`.
/// Linux honours it for TCP reads and readiness; other systems and socket
/// types may ignore it, which only costs the saved wake-ups.
#[cfg(all(feature = "std", unix))]
pub fn set_on(socket: &impl std::os::fd::AsFd, bytes: usize) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;

    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    let size = libc::socklen_t::try_from(size_of::<libc::c_int>()).unwrap_or(libc::socklen_t::MAX);
    // SAFETY: the descriptor is open for the duration of the borrow, and
    // the option value is a live c_int whose size is passed with it.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_fd().as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVLOWAT,
            (&raw const value).cast(),
            size,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// What was written to `socket` and its peer has not taken yet, as Linux
/// counts it (`SIOCOUTQ`): on TCP, the bytes not yet sent or not yet
/// acknowledged ([`Unsent::Bytes`]); on a Unix stream socket, the memory
/// of the buffers its peer has not read to the end ([`Unsent::Memory`]),
/// which is no byte count. `None` where that is not known (other systems
/// and socket types).
///
/// A reply cannot come before the peer has the whole command, and a
/// finished write only means the command is in the kernel's send buffer,
/// which on loopback holds megabytes: a driver whose reply deadline passes
/// while the command's own part of this still shrinks is still sending
/// ([`crate::reply_watch::own_unsent`], [`crate::reply_watch::SendProgress`]).
/// Called only when a deadline passes: it costs two syscalls.
///
/// ```
/// use std::io::{Read, Write};
/// use std::os::unix::net::UnixStream;
/// use beanstalk_proto::read_low_water::unsent_bytes;
/// use beanstalk_proto::reply_watch::Unsent;
///
/// let (mut client, mut server) = UnixStream::pair()?;
/// client.write_all(b"stats\r\n")?;
/// if let Some(Unsent::Memory(memory)) = unsent_bytes(&client) {
///     assert!(memory > 7, "a buffer costs more than its bytes");
/// }
/// server.read_exact(&mut [0; 7])?;
/// assert!(matches!(unsent_bytes(&client), Some(Unsent::Memory(0)) | None));
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// [`Unsent::Bytes`]: crate::reply_watch::Unsent::Bytes
/// [`Unsent::Memory`]: crate::reply_watch::Unsent::Memory
#[cfg(all(feature = "std", target_os = "linux"))]
pub fn unsent_bytes(socket: &impl std::os::fd::AsFd) -> Option<Unsent> {
    use std::os::fd::AsRawFd;

    let fd = socket.as_fd().as_raw_fd();
    let mut domain: libc::c_int = -1;
    let mut size = libc::socklen_t::try_from(size_of::<libc::c_int>()).ok()?;
    // SAFETY: the descriptor is open for the duration of the borrow, and
    // the option buffer is a live c_int whose size is passed with it.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_DOMAIN,
            (&raw mut domain).cast(),
            &mut size,
        )
    };
    if rc != 0 {
        return None;
    }
    // The unit the count comes in: only these two are known.
    let unit = match domain {
        libc::AF_INET | libc::AF_INET6 => Unsent::Bytes,
        libc::AF_UNIX => Unsent::Memory,
        _ => return None,
    };
    let mut queued: libc::c_int = 0;
    // SAFETY: the descriptor is open for the duration of the borrow, and
    // TIOCOUTQ (SIOCOUTQ) writes one c_int to the live buffer passed.
    let rc = unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &raw mut queued) };
    if rc == 0 {
        usize::try_from(queued).ok().map(unit)
    } else {
        None
    }
}

/// Not known outside Linux.
#[cfg(all(feature = "std", not(target_os = "linux")))]
pub fn unsent_bytes<S>(_socket: &S) -> Option<Unsent> {
    None
}

/// Before a read of `socket`: looks where its replies come from when that
/// is due ([`ReadLowWater::cpu_check_due`]), then sets the mark the
/// commands in flight on `conn` call for ([`ReadLowWater::next_for`]),
/// if it changed.
///
/// An error means the mark may not be what the reads need: a socket left
/// asking for more than will come would stall until the timeout, so give
/// the connection up.
#[cfg(all(feature = "std", unix))]
pub fn update_on(
    socket: &impl std::os::fd::AsFd,
    mark: &mut ReadLowWater,
    conn: &Connection,
) -> std::io::Result<()> {
    if mark.cpu_check_due() {
        mark.set_replies_from_another_cpu(replies_from_another_cpu(socket));
    }
    match mark.next_for(conn) {
        Some(bytes) => set_on(socket, bytes),
        None => Ok(()),
    }
}

/// Without Unix descriptors the mark is left alone: reads wake per reply.
#[cfg(all(feature = "std", not(unix)))]
pub fn update_on<S>(
    _socket: &S,
    _mark: &mut ReadLowWater,
    _conn: &Connection,
) -> std::io::Result<()> {
    Ok(())
}

/// Whether the bytes last received on `socket` were delivered by another
/// CPU than the one running the caller (`SO_INCOMING_CPU` against
/// `sched_getcpu`): on loopback, whether the server runs on another CPU.
/// `None` where Linux does not say (nothing received yet, other systems,
/// socket types that do not record it).
///
/// ```
/// use std::io::{Read, Write};
/// use beanstalk_proto::read_low_water::replies_from_another_cpu;
///
/// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let mut client = std::net::TcpStream::connect(listener.local_addr()?)?;
/// let (mut server, _) = listener.accept()?;
/// server.write_all(b"INSERTED 1\r\n")?;
/// client.read_exact(&mut [0; 12])?;
/// // Written by this thread, most likely on this CPU.
/// match replies_from_another_cpu(&client) {
///     Some(true) => println!("from another CPU: wait for two replies at most"),
///     Some(false) => println!("from this CPU: wait for up to ten"),
///     None => println!("not known here"),
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
#[cfg(all(feature = "std", target_os = "linux"))]
pub fn replies_from_another_cpu(socket: &impl std::os::fd::AsFd) -> Option<bool> {
    use std::os::fd::AsRawFd;

    let mut incoming: libc::c_int = -1;
    let mut size = libc::socklen_t::try_from(size_of::<libc::c_int>()).ok()?;
    // SAFETY: the descriptor is open for the duration of the borrow, and
    // the option buffer is a live c_int whose size is passed with it.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_fd().as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_INCOMING_CPU,
            (&raw mut incoming).cast(),
            &mut size,
        )
    };
    // SAFETY: no arguments; it reads the calling thread's CPU.
    let mine = unsafe { libc::sched_getcpu() };
    (rc == 0 && incoming >= 0 && mine >= 0).then_some(incoming != mine)
}

/// Other systems do not say which CPU delivered a socket's bytes.
#[cfg(all(feature = "std", not(target_os = "linux")))]
pub fn replies_from_another_cpu<S>(_socket: &S) -> Option<bool> {
    None
}

/// Without Unix descriptors the mark is left alone: reads wake per reply.
#[cfg(all(feature = "std", not(unix)))]
pub fn set_on<S>(_socket: &S, _bytes: usize) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::CommandKind;

    /// The shortest reply to a `put`: `BURIED 1\r\n`.
    const PUT_REPLY: usize = CommandKind::Put.shortest_reply();

    #[test]
    fn never_asks_for_more_than_the_replies_due_must_bring() {
        for due in 0..10_000 {
            let mut mark = ReadLowWater::default();
            let bytes = mark.next(due).unwrap_or(mark.bytes());
            // Even with the first reply partly read already, the others bring this much.
            assert!(
                bytes <= (SHORTEST_REPLY * due.saturating_sub(1)).max(1),
                "{due}"
            );
        }
    }

    #[test]
    fn never_asks_for_more_than_an_initial_congestion_window_carries() {
        for due in 0..10_000 {
            let mut mark = ReadLowWater::default();
            let bytes = mark.next(due).unwrap_or(mark.bytes());
            assert!(bytes <= 10 * SHORTEST_REPLY, "{due}");
        }
    }

    #[test]
    fn a_steady_pipeline_keeps_its_mark() {
        let mut mark = ReadLowWater::default();
        assert_eq!(mark.next(200), Some(80));
        for due in FROM_REPLIES_DUE..256 {
            assert_eq!(mark.next(due), None, "{due}");
        }
    }

    #[test]
    fn short_pipelines_wake_at_the_first_byte() {
        let mut mark = ReadLowWater::default();
        assert_eq!(mark.next(FROM_REPLIES_DUE - 1), None);
        assert_eq!(mark.next(FROM_REPLIES_DUE), Some(80));
        assert_eq!(mark.next(FROM_REPLIES_DUE - 1), Some(1));
    }

    #[test]
    fn only_short_replies_ahead_of_the_first_reserve_count() {
        use crate::cmd::{Put, Reserve, ReserveWithTimeout};
        use crate::{Config, PutOptions, WriteBuf};

        /// `puts_before` puts, a `reserve-with-timeout 0`, a `reserve`
        /// that may wait, and 500 puts behind it.
        fn pipeline(puts_before: usize) -> Connection {
            let mut conn = Connection::new(Config::default());
            let mut out = WriteBuf::new();
            let put = Put::new("x", PutOptions::default()).unwrap();
            for _ in 0..puts_before {
                conn.send(&put, &mut out).unwrap();
            }
            // Answered at once, but with a body: it ends the count.
            conn.send(&ReserveWithTimeout::new(0).unwrap(), &mut out)
                .unwrap();
            conn.send(&Reserve, &mut out).unwrap();
            for _ in 0..500 {
                conn.send(&put, &mut out).unwrap();
            }
            conn
        }

        let conn = pipeline(40);
        assert_eq!(conn.short_replies_due(usize::MAX), 40);
        assert_eq!(conn.short_replies_due(10), 10);
        assert_eq!(
            ReadLowWater::default().next_for(&conn),
            Some(10 * PUT_REPLY)
        );
        // 500 puts are in flight, but only 10 short replies come first.
        let conn = pipeline(10);
        assert_eq!(conn.short_replies_due(usize::MAX), 10);
        assert_eq!(ReadLowWater::default().next_for(&conn), None);
    }

    /// `due` puts in flight.
    fn puts_in_flight(due: usize) -> Connection {
        use crate::cmd::Put;
        use crate::{PutOptions, WriteBuf};

        let mut conn = Connection::default();
        let mut out = WriteBuf::new();
        let put = Put::new("x", PutOptions::default()).unwrap();
        for _ in 0..due {
            conn.send(&put, &mut out).unwrap();
        }
        conn
    }

    /// `due` puts of 20,000 bytes in flight.
    fn large_puts_in_flight(due: usize) -> Connection {
        use crate::cmd::Put;
        use crate::{PutOptions, WriteBuf};

        let mut conn = Connection::default();
        let mut out = WriteBuf::new();
        let put = Put::new(alloc::vec![b'x'; 20_000], PutOptions::default()).unwrap();
        for _ in 0..due {
            conn.send(&put, &mut out).unwrap();
        }
        conn
    }

    #[test]
    fn large_commands_in_flight_wait_for_half_their_replies() {
        // Three large puts are short of LARGE_BYTES_IN_FLIGHT, and of
        // FROM_LARGE_REPLIES_DUE; four reach both.
        assert_eq!(
            ReadLowWater::default().next_for(&large_puts_in_flight(3)),
            None
        );
        assert_eq!(
            ReadLowWater::default().next_for(&large_puts_in_flight(4)),
            Some(2 * PUT_REPLY)
        );
        assert_eq!(
            ReadLowWater::default().next_for(&large_puts_in_flight(7)),
            Some(3 * PUT_REPLY)
        );
        // Small commands, as many: a byte.
        assert_eq!(ReadLowWater::default().next_for(&puts_in_flight(7)), None);
        for due in 0..100 {
            let mut mark = ReadLowWater::default();
            let bytes = mark
                .next_for(&large_puts_in_flight(due))
                .unwrap_or(mark.bytes());
            // Even with the first reply partly read already, the others bring this much.
            assert!(bytes <= (PUT_REPLY * due.saturating_sub(1)).max(1), "{due}");
            assert!(bytes <= MOST_REPLIES_AWAITED * PUT_REPLY, "{due}");
        }
    }

    #[test]
    fn the_mark_comes_down_as_large_commands_are_answered() {
        use bytes::BytesMut;

        let mut conn = large_puts_in_flight(6);
        let mut mark = ReadLowWater::default();
        assert_eq!(mark.next_for(&conn), Some(3 * PUT_REPLY));
        let mut replies = BytesMut::new();
        for due in (0..6usize).rev() {
            replies.extend_from_slice(b"INSERTED 1\r\n");
            conn.poll_response(&mut replies).unwrap().unwrap();
            let bytes = mark.next_for(&conn).unwrap_or(mark.bytes());
            assert!(
                bytes <= (SHORTEST_REPLY * due.saturating_sub(1)).max(1),
                "{due}"
            );
        }
        assert_eq!(mark.bytes(), 1);
    }

    #[test]
    fn a_batch_never_waits_for_more_than_the_replies_due_bring() {
        for due in 0..40 {
            let conn = puts_in_flight(due);
            for wanted in 0..40 {
                let mut mark = ReadLowWater::default();
                mark.want_replies(Some(wanted));
                let bytes = mark.next_for(&conn).unwrap_or(mark.bytes());
                // The first reply may be partly read already: the others bring this much.
                assert!(
                    bytes <= (PUT_REPLY * due.saturating_sub(1)).max(1),
                    "{due} due, {wanted} wanted: {bytes}"
                );
                assert!(bytes <= (PUT_REPLY * wanted).max(1), "{due} {wanted}");
                assert!(bytes <= MOST_REPLIES_AWAITED * PUT_REPLY, "{due} {wanted}");
            }
        }
    }

    #[test]
    fn what_a_batch_wants_holds_for_one_read() {
        let conn = puts_in_flight(5);
        let mut mark = ReadLowWater::default();
        mark.want_replies(Some(3));
        assert_eq!(mark.next_for(&conn), Some(3 * PUT_REPLY));
        assert_eq!(mark.next_for(&conn), Some(1), "5 due: back to a byte");
        mark.want_replies(Some(3));
        mark.reset();
        assert_eq!(mark.next_for(&conn), None, "reset forgets it too");
        mark.want_replies(Some(3));
        mark.want_replies(None);
        assert_eq!(mark.next_for(&conn), None, "withdrawn");
    }

    #[test]
    fn one_command_in_flight_wakes_at_the_first_byte() {
        for blocking in [false, true] {
            let mut mark = if blocking {
                ReadLowWater::for_blocking_reads()
            } else {
                ReadLowWater::default()
            };
            mark.next_for(&puts_in_flight(40));
            assert!(mark.bytes() > 1, "a pipeline raised the mark");
            mark.want_replies(Some(3));
            assert_eq!(mark.next_for(&puts_in_flight(1)), Some(1));
            assert_eq!(mark.next_for(&puts_in_flight(0)), None);
            // The wish was for that one read: five due now wait for a byte.
            assert_eq!(mark.next_for(&puts_in_flight(5)), None, "{blocking}");
        }
    }

    /// Each command counts its own shortest reply, the oldest none (it may
    /// be partly read), `quit` nothing.
    #[test]
    fn each_command_counts_its_own_shortest_reply() {
        use crate::cmd::{Bury, Delete, Put, Quit};
        use crate::{PutOptions, WriteBuf};

        let mut conn = Connection::default();
        let mut out = WriteBuf::new();
        let put = Put::new("x", PutOptions::default()).unwrap();
        conn.send(&put, &mut out).unwrap();
        conn.send(&Bury::new(1, 0), &mut out).unwrap();
        conn.send(&Delete::new(1), &mut out).unwrap();
        conn.send(&put, &mut out).unwrap();
        conn.send(&Quit, &mut out).unwrap();
        // `BURIED\r\n`, `DELETED\r\n`, `BURIED 1\r\n`, and nothing for `quit`.
        assert_eq!(conn.least_reply_bytes(usize::MAX), 8 + 9 + 10);
        let mut mark = ReadLowWater::default();
        mark.want_replies(Some(4));
        assert_eq!(mark.next_for(&conn), Some(8 + 9 + 10));
        mark.want_replies(Some(2));
        assert_eq!(mark.next_for(&conn), Some(8 + 9));
    }

    /// For blocking reads, whatever the rule, the mark is at most half the
    /// bytes the replies due must still bring (the first one's too when
    /// none of it has been read), so the bytes still to come after a read
    /// took some reach it (see `for_blocking_reads`).
    #[test]
    fn blocking_reads_ask_for_half_of_what_is_sure_to_come() {
        for due in 0..40 {
            for mut conn in [puts_in_flight(due), large_puts_in_flight(due)] {
                for partly_read in [false, true] {
                    if partly_read {
                        // Half a reply in: the first reply no longer counts.
                        let _ = conn.poll_response(&mut bytes::BytesMut::from(&b"INSER"[..]));
                    }
                    let to_come = conn.least_reply_bytes(due.saturating_sub(1))
                        + if partly_read || due == 0 {
                            0
                        } else {
                            PUT_REPLY
                        };
                    assert_eq!(conn.least_reply_bytes_to_come(due), to_come);
                    for wanted in [None, Some(1), Some(2), Some(3), Some(5), Some(40)] {
                        let mut mark = ReadLowWater::for_blocking_reads();
                        mark.want_replies(wanted);
                        let bytes = mark.next_for(&conn).unwrap_or(mark.bytes());
                        assert!(
                            bytes <= (to_come / 2).max(1),
                            "{due} due, {wanted:?}, partly read {partly_read}: {bytes}"
                        );
                        // A readiness wait may ask for all but the first reply.
                        let sure = conn.least_reply_bytes(due.saturating_sub(1));
                        let mut mark = ReadLowWater::default();
                        mark.want_replies(wanted);
                        let bytes = mark.next_for(&conn).unwrap_or(mark.bytes());
                        assert!(bytes <= sure.max(1), "{due} due, {wanted:?}: {bytes}");
                    }
                }
            }
        }
        // Four large puts at the end of a batch, none of their replies in
        // yet: two replies (half of the four), not three.
        let mut mark = ReadLowWater::for_blocking_reads();
        mark.want_replies(Some(4));
        assert_eq!(mark.next_for(&large_puts_in_flight(4)), Some(2 * PUT_REPLY));
        // Part of the first reply in: half of the other three.
        let mut conn = large_puts_in_flight(4);
        let _ = conn.poll_response(&mut bytes::BytesMut::from(&b"INSER"[..]));
        let mut mark = ReadLowWater::for_blocking_reads();
        mark.want_replies(Some(4));
        assert_eq!(mark.next_for(&conn), Some(3 * PUT_REPLY / 2));
    }

    #[test]
    fn reset_forgets_the_mark() {
        let mut mark = ReadLowWater::default();
        assert_eq!(mark.next(1000), Some(80));
        mark.reset();
        assert_eq!(mark.bytes(), 1);
        assert_eq!(mark.next(1000), Some(80), "set again");
    }

    #[test]
    fn replies_from_another_cpu_are_awaited_two_at_most() {
        let conn = puts_in_flight(1000);
        let mut mark = ReadLowWater::default();
        assert_eq!(mark.next_for(&conn), Some(MOST_REPLIES_AWAITED * PUT_REPLY));
        mark.set_replies_from_another_cpu(Some(true));
        assert_eq!(
            mark.next_for(&conn),
            Some(MOST_REPLIES_AWAITED_ACROSS_CPUS * PUT_REPLY)
        );
        // A batch's own wish is capped the same way.
        mark.want_replies(Some(8));
        assert_eq!(mark.next_for(&conn), None, "still two replies");
        // Not known counts as the reader's own CPU.
        mark.set_replies_from_another_cpu(None);
        assert_eq!(mark.next_for(&conn), Some(MOST_REPLIES_AWAITED * PUT_REPLY));
        // Fewer replies than the cap are not raised to it.
        mark.set_replies_from_another_cpu(Some(true));
        mark.want_replies(Some(1));
        assert_eq!(mark.next_for(&conn), Some(PUT_REPLY));
    }

    /// What the rule for Unix sockets in `reply_watch::own_unsent` rests
    /// on: the count is memory, more than the bytes unread, a buffer read
    /// in part counts whole, and it is zero once the peer has read all.
    #[cfg(all(feature = "std", target_os = "linux"))]
    #[test]
    fn a_unix_socket_counts_buffer_memory_until_every_byte_is_read() {
        use std::io::{Read, Write};
        use std::os::unix::net::UnixStream;

        let (mut client, mut server) = UnixStream::pair().unwrap();
        let memory = |socket: &UnixStream| match unsent_bytes(socket) {
            Some(Unsent::Memory(memory)) => memory,
            other => panic!("a Unix socket counts memory: {other:?}"),
        };
        assert_eq!(memory(&client), 0);
        client.write_all(b"stats\r\n").unwrap();
        assert!(memory(&client) > 7, "a buffer costs more than its bytes");
        client.write_all(&[b'x'; 100_000]).unwrap();
        let written = memory(&client);
        assert!(written > 100_007, "{written}");
        // The `stats` and 93 bytes of the rest are read: what is left
        // counts more than the 100,000 bytes written after the `stats`,
        // though fewer are unread.
        let mut read = vec![0; 100];
        server.read_exact(&mut read).unwrap();
        assert!(memory(&client) > 100_000, "{}", memory(&client));
        let mut rest = vec![0; 100_007 - 100];
        server.read_exact(&mut rest).unwrap();
        assert_eq!(memory(&client), 0, "every byte read");
    }

    #[cfg(all(feature = "std", target_os = "linux"))]
    #[test]
    fn tcp_counts_bytes() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        assert_eq!(unsent_bytes(&client), Some(Unsent::Bytes(0)));
        // Not a socket: not known.
        let file = std::fs::File::open("/dev/null").unwrap();
        assert_eq!(unsent_bytes(&file), None);
    }

    #[test]
    fn a_new_socket_is_looked_at_from_its_second_read() {
        let mut mark = ReadLowWater::default();
        assert!(!mark.cpu_check_due(), "the first read");
        assert!(mark.cpu_check_due(), "the second read");
        assert!(!mark.cpu_check_due());
        mark.reset();
        assert!(!mark.cpu_check_due(), "the first read of the new socket");
        assert!(mark.cpu_check_due(), "its second read");
        let looks = (0..3 * CPU_CHECK_EVERY)
            .filter(|_| mark.cpu_check_due())
            .count();
        assert_eq!(looks, 3);
    }
}
