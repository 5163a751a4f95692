//! When a pipelining connection writes the commands queued since its last
//! write, and when it lets them gather for one larger write: the pacing of
//! every adapter's shared handle ([`crate::mux::Mux`]) and of a `Client`'s
//! hand-made pipeline (`send` and `recv`).
//!
//! beanstalkd answers each command with a write of its own, so a client on
//! another CPU wakes for every reply or two, and each reply it handles
//! queues the next command at once. Written as they come, those commands
//! leave a few at a time: on loopback, 100,000 puts from 64 tasks took
//! 41,000 writes and as many reads. Every small segment costs the server
//! too, which handles the client's segments and acknowledgements on its
//! own CPU: 5.6 µs of server CPU per put against 4.9 µs for a client that
//! writes large batches, and the server's CPU is the limit.
//!
//! While the server still has plenty of this connection's commands to work
//! through, a new command written now would only queue behind them, so
//! holding it until the next replies costs it nothing, and a dozen commands
//! then leave in one write. The hold ends as soon as fewer than
//! [`HOLD_WHILE_UNANSWERED`] written commands are unanswered, or
//! [`HOLD_AT_MOST`] bytes are waiting. A held command is never stuck: it
//! waits for replies to commands already written, and a read never waits
//! for more replies than that ([`MOST_REPLIES_AWAITED`] is smaller). A
//! command held behind a `reserve` that waits for a job loses nothing
//! either: the server reads nothing more from the connection until that
//! reserve is answered.
//!
//! On one CPU the same rule backfires: the server runs only while the
//! client sleeps, so a held write lets it run out of work and sleep, and
//! both sides pay a wake-up. The pacer notices that case: every written
//! command answered while output was held. It then writes at once for the
//! next [`CALM_WRITES`] writes before it tries holding again; twice as many
//! each time that happens again, and half as many after a hold that ended
//! with the server still busy. So a client and a server the scheduler moves
//! between CPUs get the pacing of where they run now. A `Client` also
//! knows where its replies come from
//! ([`ReadLowWater::replies_across_cpus`]) and holds only while they come
//! from another CPU: with the heuristic alone, a blocking client's
//! pipelined reserve+delete on one CPU ran at 0.83x the raw client's pace.
//!
//! [`ReadLowWater::replies_across_cpus`]: crate::read_low_water::ReadLowWater::replies_across_cpus
//!
//! ```
//! use beanstalk_proto::write_pacing::{WritePacing, HOLD_WHILE_UNANSWERED};
//!
//! let mut pacing = WritePacing::default();
//! assert!(!pacing.holds(100), "nothing written yet: write at once");
//! pacing.taken(HOLD_WHILE_UNANSWERED); // everything queued is written
//! assert!(pacing.holds(100), "the server is busy: let the next commands gather");
//! pacing.answered(); // a reply came
//! assert!(!pacing.holds(100), "below the mark: write");
//! ```
//!
//! [`MOST_REPLIES_AWAITED`]: crate::read_low_water::MOST_REPLIES_AWAITED

use crate::read_low_water::MOST_REPLIES_AWAITED;

// A held command must never wait for a read that waits for its reply.
const _: () = assert!(MOST_REPLIES_AWAITED < HOLD_WHILE_UNANSWERED);

/// Commands written and still unanswered from which new ones are held.
/// At about 5 µs of server work each, they keep the server busy for longer
/// than a client on another CPU takes to wake for the next replies.
pub const HOLD_WHILE_UNANSWERED: usize = 16;

/// Queued bytes that are written whatever is unanswered.
pub const HOLD_AT_MOST: usize = 64 * 1024;

/// Writes made at once after holding first let the server run out of work;
/// each time again doubles it, up to [`CALM_WRITES_MAX`], and each hold that
/// ends with the server still busy halves it again.
pub const CALM_WRITES: u32 = 64;

/// The longest run of writes made at once.
pub const CALM_WRITES_MAX: u32 = 4096;

/// The write pacing of one connection. See the module documentation.
#[derive(Debug, Default)]
pub struct WritePacing {
    /// Commands taken for writing whose replies have not come.
    written_unanswered: usize,
    /// Output was held since some was last taken.
    held: bool,
    /// Writes still to be made without holding.
    calm: u32,
    /// How many the next hold that idles the server calls for (0: the
    /// initial [`CALM_WRITES`]).
    next_calm: u32,
}

impl WritePacing {
    /// Whether `queued` bytes of commands, encoded since the last write,
    /// should wait for the next replies instead of being written now.
    pub fn holds(&mut self, queued: usize) -> bool {
        let hold = self.calm == 0
            && self.written_unanswered >= HOLD_WHILE_UNANSWERED
            && queued < HOLD_AT_MOST;
        self.held |= hold;
        hold
    }

    /// [`WritePacing::holds`] for a connection that knows where its
    /// replies come from ([`ReadLowWater::replies_across_cpus`]): only
    /// while they come from another CPU. On the reader's own CPU the server
    /// runs only while the reader sleeps, and a hold lets it run out of
    /// work. What every `Client` asks before writing its follow-ups.
    ///
    /// [`ReadLowWater::replies_across_cpus`]: crate::read_low_water::ReadLowWater::replies_across_cpus
    ///
    /// ```
    /// use beanstalk_proto::write_pacing::{WritePacing, HOLD_WHILE_UNANSWERED};
    ///
    /// let mut pacing = WritePacing::default();
    /// pacing.taken(HOLD_WHILE_UNANSWERED);
    /// assert!(!pacing.holds_across_cpus(false, 100), "the server shares our CPU");
    /// assert!(pacing.holds_across_cpus(true, 100));
    /// ```
    pub fn holds_across_cpus(&mut self, replies_across_cpus: bool, queued: usize) -> bool {
        replies_across_cpus && self.holds(queued)
    }

    /// Records what [`Connection::poll_response`] returned: a reply
    /// answers a command ([`WritePacing::answered`]); none means every
    /// reply read so far was handed out ([`WritePacing::replies_handled`]).
    ///
    /// [`Connection::poll_response`]: crate::Connection::poll_response
    pub fn note_poll<T, E>(&mut self, polled: &Result<Option<T>, E>) {
        match polled {
            Ok(Some(_)) => self.answered(),
            Ok(None) => self.replies_handled(),
            Err(_) => {}
        }
    }

    /// Everything queued was taken for writing: every one of the
    /// `in_flight` commands is now written (or being written).
    pub fn taken(&mut self, in_flight: usize) {
        if self.held {
            // The hold ended with the server still busy: it worked.
            self.next_calm = (self.next_calm / 2).max(CALM_WRITES);
        }
        self.written_unanswered = in_flight;
        self.held = false;
        self.calm = self.calm.saturating_sub(1);
    }

    /// A command was answered (or, for `quit`, completed without a reply,
    /// perhaps before it was even taken: hence saturating).
    pub fn answered(&mut self) {
        self.written_unanswered = self.written_unanswered.saturating_sub(1);
    }

    /// Every complete reply read so far was handed out (the read buffer
    /// holds no more). If the server answered all it had while output was
    /// held, it ran out of work because of the hold.
    pub fn replies_handled(&mut self) {
        if self.held && self.written_unanswered == 0 {
            self.calm = self.next_calm.max(CALM_WRITES);
            self.next_calm = (self.calm * 2).min(CALM_WRITES_MAX);
            self.held = false;
        }
    }

    /// The connection failed or closed: nothing is in flight any more.
    pub fn reset(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_only_while_enough_written_commands_are_unanswered() {
        let mut pacing = WritePacing::default();
        assert!(!pacing.holds(100), "nothing written yet");
        pacing.taken(HOLD_WHILE_UNANSWERED);
        assert!(pacing.holds(100));
        pacing.answered();
        assert!(!pacing.holds(100), "one answer brings it below the mark");
    }

    #[test]
    fn a_large_backlog_is_written_at_once() {
        let mut pacing = WritePacing::default();
        pacing.taken(1000);
        assert!(pacing.holds(HOLD_AT_MOST - 1));
        assert!(!pacing.holds(HOLD_AT_MOST));
    }

    #[test]
    fn a_server_left_idle_by_a_hold_turns_holding_off_for_a_while() {
        let mut pacing = WritePacing::default();
        pacing.taken(HOLD_WHILE_UNANSWERED);
        assert!(pacing.holds(10));
        for _ in 0..HOLD_WHILE_UNANSWERED {
            pacing.answered();
        }
        pacing.replies_handled();
        for _ in 0..CALM_WRITES {
            assert!(!pacing.holds(10));
            pacing.taken(100);
        }
        assert!(pacing.holds(10), "holding is tried again");
    }

    /// A pacer holding output with as many commands unanswered as it takes.
    fn holding() -> WritePacing {
        let mut pacing = WritePacing::default();
        pacing.taken(HOLD_WHILE_UNANSWERED);
        assert!(pacing.holds(10));
        pacing
    }

    /// Lets the server of a [`holding`] pacer run out of work, then makes
    /// the writes that follow at once, until the pacer holds again; returns
    /// how many there were.
    fn idle_the_server(pacing: &mut WritePacing) -> u32 {
        for _ in 0..HOLD_WHILE_UNANSWERED {
            pacing.answered();
        }
        pacing.replies_handled();
        let mut calm = 0;
        while !pacing.holds(10) {
            pacing.taken(HOLD_WHILE_UNANSWERED);
            calm += 1;
        }
        calm
    }

    #[test]
    fn a_server_idled_again_and_again_gets_ever_longer_calm_spells() {
        let mut pacing = holding();
        let spells: Vec<u32> = (0..8).map(|_| idle_the_server(&mut pacing)).collect();
        assert_eq!(spells, [64, 128, 256, 512, 1024, 2048, 4096, 4096]);
    }

    #[test]
    fn holds_that_work_shorten_the_next_calm_spell() {
        let mut pacing = holding();
        for _ in 0..4 {
            idle_the_server(&mut pacing); // the next spell: 1024 writes
        }
        // Two holds end with the server still busy: one reply, and the
        // rest written.
        for _ in 0..2 {
            pacing.answered();
            assert!(!pacing.holds(10));
            pacing.taken(HOLD_WHILE_UNANSWERED);
            assert!(pacing.holds(10));
        }
        assert_eq!(idle_the_server(&mut pacing), 256);
    }

    #[test]
    fn replies_that_leave_work_in_flight_keep_holding_on() {
        let mut pacing = WritePacing::default();
        pacing.taken(HOLD_WHILE_UNANSWERED + 4);
        assert!(pacing.holds(10));
        for _ in 0..4 {
            pacing.answered();
        }
        pacing.replies_handled();
        assert!(pacing.holds(10));
    }

    #[test]
    fn answers_beyond_what_was_written_do_not_wrap() {
        let mut pacing = WritePacing::default();
        pacing.answered();
        pacing.replies_handled();
        assert!(!pacing.holds(10));
    }
}
