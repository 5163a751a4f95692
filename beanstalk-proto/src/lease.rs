//! Which jobs a client holds, and on which connection it reserved them.
//!
//! A reserved job belongs to the connection that reserved it. When that
//! connection closes, the server puts the job back (ready, or to another
//! worker), so `delete`, `release`, `bury` and `touch` sent for it on a new
//! connection either answer `NOT_FOUND` or, worse, `delete` removes a job
//! that someone else may be working on (beanstalkd#402).
//!
//! [`LeaseTracker`] remembers the jobs reserved on the current connection
//! ("generation"). When the connection is lost they become *lost leases*,
//! and [`LeaseTracker::check`] refuses those four commands for them with
//! [`Error::LeaseLost`] before anything is sent. A reconnecting driver
//! calls [`LeaseTracker::observe`] with every reply to keep it current.
//!
//! ```
//! use beanstalk_proto::cmd::{self, CommandKind};
//! use beanstalk_proto::lease::LeaseTracker;
//! use beanstalk_proto::{Error, Job, Request, Response};
//!
//! let mut leases = LeaseTracker::new();
//! // `reserve` answered job 7 on generation 0.
//! leases.observe(CommandKind::Reserve, None, &Response::Job(Job::new(7, "body")));
//! assert!(leases.is_held(7));
//! assert!(leases.check(CommandKind::Touch, 7).is_ok());
//!
//! // The connection breaks; the driver reconnects.
//! leases.new_connection();
//! assert_eq!(leases.generation(), 1);
//! assert!(matches!(leases.check(CommandKind::Delete, 7), Err(Error::LeaseLost { job_id: 7 })));
//! // Other commands about the job (peek, stats-job) are still fine.
//! assert!(leases.check(CommandKind::Peek, 7).is_ok());
//! ```

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::cmd::CommandKind;
use crate::error::Error;
use crate::frame::ReplyWord;
use crate::response::{Job, JobId, Response};

/// How many lost leases are remembered; the oldest are forgotten first.
/// A worker holds one job per connection, so this is ample.
pub const MAX_LOST_LEASES: usize = 4096;

/// A job reserved on a given connection generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Lease {
    /// The job.
    pub job_id: JobId,
    /// The generation of the connection that reserved it (see
    /// [`LeaseTracker::generation`]).
    pub generation: u64,
}

impl Lease {
    /// A lease on `job_id` taken on connection `generation`.
    pub const fn new(job_id: JobId, generation: u64) -> Self {
        Self { job_id, generation }
    }

    /// Whether the connection that reserved the job is still the current
    /// one.
    pub fn is_current(&self, tracker: &LeaseTracker) -> bool {
        self.generation == tracker.generation() && tracker.is_held(self.job_id)
    }
}

/// The jobs reserved on the current connection, and those lost with
/// earlier ones. See the [module docs](self).
#[derive(Debug, Clone, Default)]
pub struct LeaseTracker {
    generation: u64,
    held: BTreeMap<JobId, u64>,
    lost: BTreeSet<JobId>,
    lost_order: VecDeque<JobId>,
}

impl LeaseTracker {
    /// No leases, generation 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current connection's generation: 0 for the first connection,
    /// one more for each reconnection.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether `job_id` is held on the current connection.
    pub fn is_held(&self, job_id: JobId) -> bool {
        self.held.contains_key(&job_id)
    }

    /// Whether `job_id` was held on a connection that has been lost.
    pub fn is_lost(&self, job_id: JobId) -> bool {
        self.lost.contains(&job_id)
    }

    /// The jobs held on the current connection.
    pub fn held(&self) -> impl Iterator<Item = Lease> + '_ {
        self.held
            .iter()
            .map(|(&job_id, &generation)| Lease::new(job_id, generation))
    }

    /// Records that the current connection reserved `job_id`.
    pub fn reserved(&mut self, job_id: JobId) -> Lease {
        self.held.insert(job_id, self.generation);
        if self.lost.remove(&job_id) {
            self.lost_order.retain(|id| *id != job_id);
        }
        Lease::new(job_id, self.generation)
    }

    /// Records that the job is no longer held: deleted, released or buried,
    /// or `NOT_FOUND` (its time-to-run ran out).
    pub fn settled(&mut self, job_id: JobId) {
        self.held.remove(&job_id);
    }

    /// The current connection is gone: every job it held is now a lost
    /// lease. Returns how many were. Safe to call more than once.
    pub fn connection_lost(&mut self) -> usize {
        let held = core::mem::take(&mut self.held);
        let count = held.len();
        for job_id in held.into_keys() {
            if self.lost.insert(job_id) {
                self.lost_order.push_back(job_id);
            }
        }
        while self.lost_order.len() > MAX_LOST_LEASES {
            if let Some(oldest) = self.lost_order.pop_front() {
                self.lost.remove(&oldest);
            }
        }
        count
    }

    /// A new connection replaced the old one: its leases are lost, and the
    /// generation goes up by one.
    pub fn new_connection(&mut self) {
        self.connection_lost();
        self.generation += 1;
    }

    /// Refuses `delete`, `release`, `bury` and `touch` of a lost lease with
    /// [`Error::LeaseLost`]; everything else passes.
    pub fn check(&self, kind: CommandKind, job_id: JobId) -> Result<(), Error> {
        if acts_on_lease(kind) && self.lost.contains(&job_id) {
            Err(Error::LeaseLost { job_id })
        } else {
            Ok(())
        }
    }

    /// Updates the leases from a reply: a reserve's job is now held; a
    /// successful `delete`, `release` or `bury`, or `NOT_FOUND` to any of
    /// those or `touch`, means the job is no longer held. `job_id` is the
    /// command's [`crate::Request::job_id`].
    pub fn observe(&mut self, kind: CommandKind, job_id: Option<JobId>, response: &Response) {
        match (kind, response) {
            (
                CommandKind::Reserve | CommandKind::ReserveWithTimeout | CommandKind::ReserveJob,
                Response::Job(Job { id, .. }) | Response::JobTooLarge { id, .. },
            ) => {
                // A job past the cap is reserved too, only its body dropped.
                self.reserved(*id);
            }
            (CommandKind::Delete | CommandKind::Release | CommandKind::Bury, reply) => {
                let failed = matches!(
                    reply,
                    Response::Word(
                        ReplyWord::OutOfMemory | ReplyWord::InternalError | ReplyWord::Draining
                    )
                );
                if let (false, Some(id)) = (failed, job_id) {
                    self.settled(id);
                }
            }
            (CommandKind::Touch, Response::Word(ReplyWord::NotFound)) => {
                if let Some(id) = job_id {
                    self.settled(id);
                }
            }
            _ => {}
        }
    }
}

/// Whether the command acts on a job as the connection that reserved it.
const fn acts_on_lease(kind: CommandKind) -> bool {
    matches!(
        kind,
        CommandKind::Delete | CommandKind::Release | CommandKind::Bury | CommandKind::Touch
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A job whose body was past the cap is reserved all the same: after
    /// a reconnect, settling it on the new connection is refused.
    #[test]
    fn a_job_past_the_cap_is_a_lease_too() {
        let mut leases = LeaseTracker::new();
        let too_large = Response::JobTooLarge {
            id: 3,
            len: 100_000,
            max: 65_535,
        };
        leases.observe(CommandKind::Reserve, None, &too_large);
        assert!(leases.is_held(3));
        leases.new_connection();
        assert!(matches!(
            leases.check(CommandKind::Delete, 3),
            Err(Error::LeaseLost { job_id: 3 })
        ));
        // A peek's job is not reserved.
        leases.observe(CommandKind::Peek, None, &too_large);
        assert!(!leases.is_held(3));
    }

    #[test]
    fn settled_jobs_are_not_lost() {
        let mut leases = LeaseTracker::new();
        leases.observe(CommandKind::Reserve, None, &Response::Job(Job::new(1, "")));
        leases.observe(CommandKind::Reserve, None, &Response::Job(Job::new(2, "")));
        leases.observe(
            CommandKind::Delete,
            Some(1),
            &Response::Word(ReplyWord::Deleted),
        );
        assert_eq!(leases.connection_lost(), 1);
        assert!(leases.check(CommandKind::Delete, 1).is_ok());
        assert!(leases.check(CommandKind::Release, 2).is_err());
        // Reserved again later: held again, not lost.
        leases.new_connection();
        leases.observe(
            CommandKind::ReserveWithTimeout,
            None,
            &Response::Job(Job::new(2, "")),
        );
        assert!(leases.check(CommandKind::Bury, 2).is_ok());
        assert_eq!(leases.held().next(), Some(Lease::new(2, 1)));
    }

    #[test]
    fn a_failed_settle_keeps_the_lease() {
        let mut leases = LeaseTracker::new();
        leases.reserved(5);
        leases.observe(
            CommandKind::Delete,
            Some(5),
            &Response::Word(ReplyWord::InternalError),
        );
        assert!(leases.is_held(5));
        leases.observe(
            CommandKind::Touch,
            Some(5),
            &Response::Word(ReplyWord::NotFound),
        );
        assert!(!leases.is_held(5));
    }

    #[test]
    fn lost_leases_are_bounded() {
        let mut leases = LeaseTracker::new();
        for id in 1..=(MAX_LOST_LEASES as u64 + 10) {
            leases.reserved(id);
        }
        leases.new_connection();
        assert!(!leases.is_lost(1));
        assert!(leases.is_lost(MAX_LOST_LEASES as u64 + 10));
        assert_eq!(leases.lost.len(), MAX_LOST_LEASES);
        assert_eq!(leases.lost_order.len(), MAX_LOST_LEASES);
    }

    #[test]
    fn lease_is_current_only_on_its_generation() {
        let mut leases = LeaseTracker::new();
        let lease = leases.reserved(9);
        assert!(lease.is_current(&leases));
        leases.new_connection();
        assert!(!lease.is_current(&leases));
    }
}
