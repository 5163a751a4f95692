//! The command set, written once for every driver.
//!
//! A driver implements one method, [`Execute::execute`] (blocking) or
//! [`AsyncExecute::execute`] (async): send one [`Request`], return its typed
//! result. The `commands!` table below then gives it all 25 commands, with
//! the same names, arguments, documentation and results everywhere, through
//! the blanket-implemented [`Commands`] and [`AsyncCommands`] traits.
//!
//! ```
//! use beanstalk_proto::{Commands, Error, Execute, Request};
//!
//! /// A driver that answers every command with NOT_FOUND, to show the shape.
//! struct Nothing;
//! impl Execute for Nothing {
//!     fn execute<R: Request>(&mut self, _request: R) -> Result<R::Output, Error> {
//!         Err(Error::NotFound)
//!     }
//! }
//! assert!(matches!(Nothing.delete(1), Err(Error::NotFound)));
//! assert!(Nothing.watch("bad name").unwrap_err().to_string().contains("0x20"));
//! ```

use core::future::Future;

use crate::cmd::{self, Body, PutOptions, PutReceipt, ReleaseOutcome, Request};
use crate::error::Error;
use crate::response::{Job, JobId};
use crate::stats::{JobStats, ServerStats, TubeList, TubeStats};
use crate::tube::{IntoTube, Tube};

/// Runs one command to completion, blocking.
pub trait Execute {
    /// Sends `request`, waits for its reply and types it.
    fn execute<R: Request>(&mut self, request: R) -> Result<R::Output, Error>;
}

/// Runs one command to completion, asynchronously.
pub trait AsyncExecute {
    /// Sends `request`, waits for its reply and types it.
    fn execute<R>(&mut self, request: R) -> impl Future<Output = Result<R::Output, Error>> + Send
    where
        R: Request + Send,
        R::Output: Send;
}

/// Expands the table into the blocking and the async command traits.
macro_rules! commands {
    ($(
        $(#[$doc:meta])*
        fn $name:ident $(<$lt:lifetime>)? ($($arg:ident: $ty:ty),*) -> $out:ty => $request:expr;
    )*) => {
        /// All 25 beanstalkd commands, for any blocking driver.
        ///
        /// Implemented for every [`Execute`]; bring it into scope to call
        /// the commands. Invalid arguments fail with
        /// [`crate::CommandError`] before anything is sent.
        pub trait Commands: Execute {
            $(
                $(#[$doc])*
                fn $name $(<$lt>)? (&mut self, $($arg: $ty),*) -> Result<$out, Error> {
                    let request = $request;
                    self.execute(request?)
                }
            )*
        }

        /// All 25 beanstalkd commands, for any async driver.
        ///
        /// Implemented for every [`AsyncExecute`]; bring it into scope to
        /// call the commands. The futures are `Send`. Invalid arguments
        /// fail with [`crate::CommandError`] before anything is sent.
        pub trait AsyncCommands: AsyncExecute + Send {
            $(
                $(#[$doc])*
                fn $name $(<$lt>)? (&mut self, $($arg: $ty),*)
                    -> impl Future<Output = Result<$out, Error>> + Send
                {
                    let request = $request;
                    async move { self.execute(request?).await }
                }
            )*
        }
    };
}

impl<T: Execute + ?Sized> Commands for T {}
impl<T: AsyncExecute + Send + ?Sized> AsyncCommands for T {}

commands! {
    /// Puts a job into the tube in use; see [`cmd::Put`].
    ///
    /// A `put` that fails with an error for which
    /// [`Error::outcome_unknown`] is true may still have created the job.
    fn put<'b>(body: impl Into<Body<'b>>, options: PutOptions) -> PutReceipt
        => cmd::Put::new(body, options);

    /// Sets the tube later puts go into; see [`cmd::Use`]. (`use` is a Rust
    /// keyword, hence the name.)
    fn use_tube(tube: impl IntoTube) -> Tube => cmd::Use::new(tube);

    /// Waits, without limit, for a job from the watched tubes; see
    /// [`cmd::Reserve`].
    fn reserve() -> Job => Ok::<_, Error>(cmd::Reserve);

    /// Waits at most `seconds` for a job; [`Error::TimedOut`] if none came.
    /// See [`cmd::ReserveWithTimeout`].
    fn reserve_with_timeout(seconds: u32) -> Job => cmd::ReserveWithTimeout::new(seconds);

    /// Reserves the job with this id (beanstalkd 1.12+); see
    /// [`cmd::ReserveJob`].
    fn reserve_job(id: JobId) -> Job => Ok::<_, Error>(cmd::ReserveJob::new(id));

    /// Deletes a job; see [`cmd::Delete`].
    fn delete(id: JobId) -> () => Ok::<_, Error>(cmd::Delete::new(id));

    /// Gives a reserved job back with a new priority and a delay in
    /// seconds; see [`cmd::Release`].
    fn release(id: JobId, priority: u32, delay: u32) -> ReleaseOutcome
        => Ok::<_, Error>(cmd::Release::new(id, priority, delay));

    /// Buries a reserved job with a new priority; see [`cmd::Bury`].
    fn bury(id: JobId, priority: u32) -> () => Ok::<_, Error>(cmd::Bury::new(id, priority));

    /// Restarts a reserved job's time-to-run; see [`cmd::Touch`].
    fn touch(id: JobId) -> () => Ok::<_, Error>(cmd::Touch::new(id));

    /// Adds a tube to the watch list; returns how many are watched. See
    /// [`cmd::Watch`].
    fn watch(tube: impl IntoTube) -> u64 => cmd::Watch::new(tube);

    /// Removes a tube from the watch list; returns how many are watched.
    /// See [`cmd::Ignore`].
    fn ignore(tube: impl IntoTube) -> u64 => cmd::Ignore::new(tube);

    /// The job with this id, if it exists; see [`cmd::Peek`].
    fn peek(id: JobId) -> Option<Job> => Ok::<_, Error>(cmd::Peek::new(id));

    /// The next ready job of the tube in use; see [`cmd::PeekReady`].
    fn peek_ready() -> Option<Job> => Ok::<_, Error>(cmd::PeekReady);

    /// The next delayed job of the tube in use; see [`cmd::PeekDelayed`].
    fn peek_delayed() -> Option<Job> => Ok::<_, Error>(cmd::PeekDelayed);

    /// The next buried job of the tube in use; see [`cmd::PeekBuried`].
    fn peek_buried() -> Option<Job> => Ok::<_, Error>(cmd::PeekBuried);

    /// Kicks up to `bound` buried (or, if none, delayed) jobs of the tube in
    /// use; returns how many. See [`cmd::Kick`].
    fn kick(bound: u32) -> u64 => Ok::<_, Error>(cmd::Kick::new(bound));

    /// Kicks one buried or delayed job; see [`cmd::KickJob`].
    fn kick_job(id: JobId) -> () => Ok::<_, Error>(cmd::KickJob::new(id));

    /// A job's state and counters; see [`cmd::StatsJob`].
    fn stats_job(id: JobId) -> JobStats => Ok::<_, Error>(cmd::StatsJob::new(id));

    /// A tube's counters; see [`cmd::StatsTube`].
    fn stats_tube(tube: impl IntoTube) -> TubeStats => cmd::StatsTube::new(tube);

    /// Server-wide counters; see [`cmd::Stats`].
    fn stats() -> ServerStats => Ok::<_, Error>(cmd::Stats);

    /// All existing tubes; see [`cmd::ListTubes`].
    fn list_tubes() -> TubeList => Ok::<_, Error>(cmd::ListTubes);

    /// The tube in use; see [`cmd::ListTubeUsed`].
    fn list_tube_used() -> Tube => Ok::<_, Error>(cmd::ListTubeUsed);

    /// The watched tubes; see [`cmd::ListTubesWatched`].
    fn list_tubes_watched() -> TubeList => Ok::<_, Error>(cmd::ListTubesWatched);

    /// Closes the connection; jobs it reserved go back to ready. See
    /// [`cmd::Quit`].
    fn quit() -> () => Ok::<_, Error>(cmd::Quit);

    /// Stops reservations from a tube for `seconds`; see [`cmd::PauseTube`].
    fn pause_tube(tube: impl IntoTube, seconds: u32) -> () => cmd::PauseTube::new(tube, seconds);
}
