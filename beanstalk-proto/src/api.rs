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

/// A blocking driver seen through [`AsyncCommands`]: each command runs to
/// completion before its future is first polled. With [`now_or_never`] it
/// lets code written once as `async fn`s over [`AsyncCommands`] (the worker
/// steps in [`crate::worker`]) run on a blocking client.
///
/// ```
/// use beanstalk_proto::api::{now_or_never, Blocking};
/// use beanstalk_proto::{AsyncCommands, Error, Execute, Request};
///
/// struct Nothing;
/// impl Execute for Nothing {
///     fn execute<R: Request>(&mut self, _request: R) -> Result<R::Output, Error> {
///         Err(Error::NotFound)
///     }
/// }
/// let deleted = now_or_never(Blocking(&mut Nothing).delete(1));
/// assert!(matches!(deleted, Some(Err(Error::NotFound))));
/// ```
#[derive(Debug)]
pub struct Blocking<'a, E: ?Sized>(pub &'a mut E);

impl<E: Execute + ?Sized> AsyncExecute for Blocking<'_, E> {
    fn execute<R>(&mut self, request: R) -> impl Future<Output = Result<R::Output, Error>> + Send
    where
        R: Request + Send,
        R::Output: Send,
    {
        core::future::ready(self.0.execute(request))
    }
}

/// Polls `future` once and returns its output if it is ready then, as
/// every future built only on [`Blocking`] commands is.
pub fn now_or_never<F: Future>(future: F) -> Option<F::Output> {
    let mut future = core::pin::pin!(future);
    let mut cx = core::task::Context::from_waker(core::task::Waker::noop());
    match future.as_mut().poll(&mut cx) {
        core::task::Poll::Ready(output) => Some(output),
        core::task::Poll::Pending => None,
    }
}

/// Expands the table into the blocking and the async command traits.
macro_rules! commands {
    ($(
        $(#[$doc:meta])*
        example $example:literal;
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
                ///
                /// ```
                #[doc = $example]
                /// ```
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
                ///
                #[doc = concat!("See [`Commands::", stringify!($name), "`] for an example; here the call is awaited.")]
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
    example r#"
# use beanstalk_proto::{Commands, PutOptions, replay::Replay};
let mut client = Replay::new(b"INSERTED 7\r\n");
let receipt = client.put("hello", PutOptions::default().ttr(30))?;
assert_eq!((receipt.id, receipt.buried), (7, false));
assert_eq!(client.sent(), b"put 1024 0 30 5\r\nhello\r\n");
# Ok::<(), beanstalk_proto::Error>(())
"#;
    fn put<'b>(body: impl Into<Body<'b>>, options: PutOptions) -> PutReceipt
        => cmd::Put::new(body, options);

    /// Sets the tube later puts go into; see [`cmd::Use`]. (`use` is a Rust
    /// keyword, hence the name.)
    example r#"
# use beanstalk_proto::{Commands, replay::Replay};
let mut client = Replay::new(b"USING emails\r\n");
assert_eq!(client.use_tube("emails")?.as_str(), "emails");
assert!(client.use_tube("bad name").is_err(), "rejected before sending");
# Ok::<(), beanstalk_proto::Error>(())
"#;
    fn use_tube(tube: impl IntoTube) -> Tube => cmd::Use::new(tube);

    /// Waits, without limit, for a job from the watched tubes; see
    /// [`cmd::Reserve`].
    example r#"
# use beanstalk_proto::{Commands, Error, replay::Replay};
let mut client = Replay::new(b"RESERVED 3 5\r\nhello\r\nDEADLINE_SOON\r\n");
let job = client.reserve()?;
assert_eq!((job.id, &job.body[..]), (3, &b"hello"[..]));
assert!(matches!(client.reserve(), Err(Error::DeadlineSoon)));
# Ok::<(), beanstalk_proto::Error>(())
"#;
    fn reserve() -> Job => Ok::<_, Error>(cmd::Reserve);

    /// Waits at most `seconds` for a job; [`Error::TimedOut`] if none came.
    /// See [`cmd::ReserveWithTimeout`].
    example r#"
# use beanstalk_proto::{Commands, Error, replay::Replay};
let mut client = Replay::new(b"TIMED_OUT\r\n");
assert!(matches!(client.reserve_with_timeout(0), Err(Error::TimedOut)));
assert_eq!(client.sent(), b"reserve-with-timeout 0\r\n");
"#;
    fn reserve_with_timeout(seconds: u32) -> Job => cmd::ReserveWithTimeout::new(seconds);

    /// Reserves the job with this id (beanstalkd 1.12+); see
    /// [`cmd::ReserveJob`].
    example r#"
# use beanstalk_proto::{Commands, replay::Replay};
let mut client = Replay::new(b"RESERVED 42 2\r\nhi\r\n");
assert_eq!(client.reserve_job(42)?.id, 42);
# Ok::<(), beanstalk_proto::Error>(())
"#;
    fn reserve_job(id: JobId) -> Job => Ok::<_, Error>(cmd::ReserveJob::new(id));

    /// Deletes a job; see [`cmd::Delete`].
    example r#"
# use beanstalk_proto::{Commands, Error, replay::Replay};
let mut client = Replay::new(b"DELETED\r\nNOT_FOUND\r\n");
client.delete(42)?;
assert!(matches!(client.delete(42), Err(Error::NotFound)));
# Ok::<(), beanstalk_proto::Error>(())
"#;
    fn delete(id: JobId) -> () => Ok::<_, Error>(cmd::Delete::new(id));

    /// Gives a reserved job back with a new priority and a delay in
    /// seconds; see [`cmd::Release`].
    example r#"
# use beanstalk_proto::{Commands, ReleaseOutcome, replay::Replay};
let mut client = Replay::new(b"RELEASED\r\n");
assert_eq!(client.release(42, 1024, 10)?, ReleaseOutcome::Released);
# Ok::<(), beanstalk_proto::Error>(())
"#;
    fn release(id: JobId, priority: u32, delay: u32) -> ReleaseOutcome
        => Ok::<_, Error>(cmd::Release::new(id, priority, delay));

    /// Buries a reserved job with a new priority; see [`cmd::Bury`].
    example r#"
# use beanstalk_proto::{Commands, replay::Replay};
let mut client = Replay::new(b"BURIED\r\n");
client.bury(42, 1024)?;
# Ok::<(), beanstalk_proto::Error>(())
"#;
    fn bury(id: JobId, priority: u32) -> () => Ok::<_, Error>(cmd::Bury::new(id, priority));

    /// Restarts a reserved job's time-to-run; see [`cmd::Touch`].
    example r#"
# use beanstalk_proto::{Commands, replay::Replay};
let mut client = Replay::new(b"TOUCHED\r\n");
client.touch(42)?;
# Ok::<(), beanstalk_proto::Error>(())
"#;
    fn touch(id: JobId) -> () => Ok::<_, Error>(cmd::Touch::new(id));

    /// Adds a tube to the watch list; returns how many are watched. See
    /// [`cmd::Watch`].
    example r#"
# use beanstalk_proto::{Commands, replay::Replay};
let mut client = Replay::new(b"WATCHING 2\r\n");
assert_eq!(client.watch("emails")?, 2);
assert_eq!(client.connection().session().watching().len(), 2);
# Ok::<(), beanstalk_proto::Error>(())
"#;
    fn watch(tube: impl IntoTube) -> u64 => cmd::Watch::new(tube);

    /// Removes a tube from the watch list; returns how many are watched.
    /// See [`cmd::Ignore`].
    example r#"
# use beanstalk_proto::{Commands, Error, replay::Replay};
let mut client = Replay::new(b"NOT_IGNORED\r\n");
assert!(matches!(client.ignore("default"), Err(Error::NotIgnored)));
"#;
    fn ignore(tube: impl IntoTube) -> u64 => cmd::Ignore::new(tube);

    /// The job with this id, if it exists; see [`cmd::Peek`].
    example r#"
# use beanstalk_proto::{Commands, replay::Replay};
let mut client = Replay::new(b"FOUND 42 2\r\nhi\r\nNOT_FOUND\r\n");
assert_eq!(&client.peek(42)?.unwrap().body[..], b"hi");
assert!(client.peek(43)?.is_none());
# Ok::<(), beanstalk_proto::Error>(())
"#;
    fn peek(id: JobId) -> Option<Job> => Ok::<_, Error>(cmd::Peek::new(id));

    /// The next ready job of the tube in use; see [`cmd::PeekReady`].
    example r#"
# use beanstalk_proto::{Commands, replay::Replay};
let mut client = Replay::new(b"FOUND 1 1\r\nx\r\n");
assert_eq!(client.peek_ready()?.unwrap().id, 1);
# Ok::<(), beanstalk_proto::Error>(())
"#;
    fn peek_ready() -> Option<Job> => Ok::<_, Error>(cmd::PeekReady);

    /// The next delayed job of the tube in use; see [`cmd::PeekDelayed`].
    example r#"
# use beanstalk_proto::{Commands, replay::Replay};
let mut client = Replay::new(b"NOT_FOUND\r\n");
assert!(client.peek_delayed()?.is_none());
# Ok::<(), beanstalk_proto::Error>(())
"#;
    fn peek_delayed() -> Option<Job> => Ok::<_, Error>(cmd::PeekDelayed);

    /// The next buried job of the tube in use; see [`cmd::PeekBuried`].
    example r#"
# use beanstalk_proto::{Commands, replay::Replay};
let mut client = Replay::new(b"FOUND 9 0\r\n\r\n");
let job = client.peek_buried()?.unwrap();
assert!(job.body.is_empty());
# Ok::<(), beanstalk_proto::Error>(())
"#;
    fn peek_buried() -> Option<Job> => Ok::<_, Error>(cmd::PeekBuried);

    /// Kicks up to `bound` buried (or, if none, delayed) jobs of the tube in
    /// use; returns how many. See [`cmd::Kick`].
    example r#"
# use beanstalk_proto::{Commands, replay::Replay};
let mut client = Replay::new(b"KICKED 2\r\n");
assert_eq!(client.kick(10)?, 2);
# Ok::<(), beanstalk_proto::Error>(())
"#;
    fn kick(bound: u32) -> u64 => Ok::<_, Error>(cmd::Kick::new(bound));

    /// Kicks one buried or delayed job; see [`cmd::KickJob`].
    example r#"
# use beanstalk_proto::{Commands, replay::Replay};
let mut client = Replay::new(b"KICKED\r\n");
client.kick_job(42)?;
# Ok::<(), beanstalk_proto::Error>(())
"#;
    fn kick_job(id: JobId) -> () => Ok::<_, Error>(cmd::KickJob::new(id));

    /// A job's state and counters; see [`cmd::StatsJob`].
    example r#"
# use beanstalk_proto::{Commands, replay::Replay, stats::JobState};
let mut client = Replay::new(b"OK 32\r\n---\nid: 42\nstate: buried\nttr: 9\n\r\n");
let stats = client.stats_job(42)?;
assert_eq!((stats.id, stats.state, stats.ttr), (42, JobState::Buried, 9));
# Ok::<(), beanstalk_proto::Error>(())
"#;
    fn stats_job(id: JobId) -> JobStats => Ok::<_, Error>(cmd::StatsJob::new(id));

    /// A tube's counters; see [`cmd::StatsTube`].
    example r#"
# use beanstalk_proto::{Commands, replay::Replay};
let mut client = Replay::new(b"OK 39\r\n---\nname: emails\ncurrent-jobs-ready: 3\n\r\n");
assert_eq!(client.stats_tube("emails")?.current_jobs_ready, 3);
# Ok::<(), beanstalk_proto::Error>(())
"#;
    fn stats_tube(tube: impl IntoTube) -> TubeStats => cmd::StatsTube::new(tube);

    /// Server-wide counters; see [`cmd::Stats`].
    example r#"
# use beanstalk_proto::{Commands, replay::Replay};
let mut client = Replay::new(b"OK 36\r\n---\nversion: \"1.13\"\ndraining: false\n\r\n");
let stats = client.stats()?;
assert_eq!(stats.version, "1.13");
assert!(!stats.draining);
# Ok::<(), beanstalk_proto::Error>(())
"#;
    fn stats() -> ServerStats => Ok::<_, Error>(cmd::Stats);

    /// All existing tubes; see [`cmd::ListTubes`].
    example r#"
# use beanstalk_proto::{Commands, replay::Replay};
let mut client = Replay::new(b"OK 18\r\n---\n- default\n- a\n\r\n");
assert_eq!(client.list_tubes()?.iter().collect::<Vec<_>>(), ["default", "a"]);
# Ok::<(), beanstalk_proto::Error>(())
"#;
    fn list_tubes() -> TubeList => Ok::<_, Error>(cmd::ListTubes);

    /// The tube in use; see [`cmd::ListTubeUsed`].
    example r#"
# use beanstalk_proto::{Commands, replay::Replay};
let mut client = Replay::new(b"USING default\r\n");
assert_eq!(client.list_tube_used()?.as_str(), "default");
# Ok::<(), beanstalk_proto::Error>(())
"#;
    fn list_tube_used() -> Tube => Ok::<_, Error>(cmd::ListTubeUsed);

    /// The watched tubes; see [`cmd::ListTubesWatched`].
    example r#"
# use beanstalk_proto::{Commands, replay::Replay};
let mut client = Replay::new(b"OK 14\r\n---\n- default\n\r\n");
assert!(client.list_tubes_watched()?.contains("default"));
# Ok::<(), beanstalk_proto::Error>(())
"#;
    fn list_tubes_watched() -> TubeList => Ok::<_, Error>(cmd::ListTubesWatched);

    /// Closes the connection; jobs it reserved go back to ready. See
    /// [`cmd::Quit`].
    example r#"
# use beanstalk_proto::{CommandError, Commands, Error, replay::Replay};
let mut client = Replay::new(b"");
client.quit()?;
assert!(matches!(client.stats(), Err(Error::Command(CommandError::Closed))));
# Ok::<(), beanstalk_proto::Error>(())
"#;
    fn quit() -> () => Ok::<_, Error>(cmd::Quit);

    /// Stops reservations from a tube for `seconds`; see [`cmd::PauseTube`].
    example r#"
# use beanstalk_proto::{Commands, replay::Replay};
let mut client = Replay::new(b"PAUSED\r\n");
client.pause_tube("emails", 30)?;
assert_eq!(client.sent(), b"pause-tube emails 30\r\n");
# Ok::<(), beanstalk_proto::Error>(())
"#;
    fn pause_tube(tube: impl IntoTube, seconds: u32) -> () => cmd::PauseTube::new(tube, seconds);
}
