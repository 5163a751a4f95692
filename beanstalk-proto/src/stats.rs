//! Typed views of the YAML bodies of `stats`, `stats-tube`, `stats-job`
//! and the tube lists.
//!
//! The bodies are flat `key: value` lines, so they are read line by line
//! rather than with a YAML library. That also sidesteps a 1.12 quirk: it
//! prints `os: #1 SMP ...` unquoted, which a YAML parser reads as a comment.
//! 1.13 quotes string values; both forms are accepted. A missing key leaves
//! its field at zero or empty; keys a newer server adds stay reachable
//! through `get` and `iter`. Strings share the reply's buffer (no copy).
//!
//! ```
//! use beanstalk_proto::stats::{JobState, JobStats};
//! use bytes::Bytes;
//!
//! let body = Bytes::from_static(b"---\nid: 2\ntube: \"emails\"\nstate: reserved\npri: 5\nnew-key: x\n");
//! let stats = JobStats::parse(body);
//! assert_eq!(stats.id, 2);
//! assert_eq!(stats.tube, "emails");
//! assert_eq!(stats.state, JobState::Reserved);
//! assert_eq!(stats.get("new-key"), Some("x"));
//! ```

use core::fmt;
use core::ops::Deref;

use alloc::vec::Vec;
use bytes::Bytes;

use crate::tube::{Tube, is_valid_tube_name};

/// A string value from a stats body, sharing the reply's buffer.
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Text(Bytes);

impl Text {
    /// The text.
    pub fn as_str(&self) -> &str {
        // Built only from `&str` slices, so always UTF-8.
        core::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Text {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Serialized as a list of names.
#[cfg(feature = "serde")]
impl serde::Serialize for TubeList {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// Iterates over the `key: value` pairs of a YAML dictionary body, with
/// optional double quotes removed from values. Lines that are not of that
/// form (the `---` header, blanks, non-UTF-8) are skipped.
pub fn entries(body: &[u8]) -> impl Iterator<Item = (&str, &str)> {
    body.split(|&b| b == b'\n').filter_map(|line| {
        let line = core::str::from_utf8(line).ok()?;
        let (key, value) = line.split_once(':')?;
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        Some((key.trim(), value))
    })
}

/// A value type a stats field can hold.
trait FromStat: Sized {
    fn from_stat(raw: &Bytes, value: &str) -> Option<Self>;
}

impl FromStat for u64 {
    fn from_stat(_: &Bytes, value: &str) -> Option<Self> {
        // Some servers print floats where integers are documented; keep the
        // integer part rather than drop the value.
        let integer = value.split_once('.').map_or(value, |(int, _)| int);
        integer.parse().ok()
    }
}

impl FromStat for u32 {
    fn from_stat(raw: &Bytes, value: &str) -> Option<Self> {
        u64::from_stat(raw, value).and_then(|n| Self::try_from(n).ok())
    }
}

impl FromStat for f64 {
    fn from_stat(_: &Bytes, value: &str) -> Option<Self> {
        value.parse().ok()
    }
}

impl FromStat for bool {
    fn from_stat(_: &Bytes, value: &str) -> Option<Self> {
        match value {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        }
    }
}

impl FromStat for Text {
    fn from_stat(raw: &Bytes, value: &str) -> Option<Self> {
        Some(Self(slice_of(raw, value)))
    }
}

impl FromStat for JobState {
    fn from_stat(_: &Bytes, value: &str) -> Option<Self> {
        Some(match value {
            "ready" => Self::Ready,
            "delayed" => Self::Delayed,
            "reserved" => Self::Reserved,
            "buried" => Self::Buried,
            _ => Self::Unknown,
        })
    }
}

/// `raw.slice_ref(part)` without its panic: `part` always comes from `raw`.
fn slice_of(raw: &Bytes, part: &str) -> Bytes {
    let start = (part.as_ptr() as usize).wrapping_sub(raw.as_ptr() as usize);
    match start.checked_add(part.len()) {
        Some(end) if end <= raw.len() => raw.slice(start..end),
        _ => Bytes::copy_from_slice(part.as_bytes()),
    }
}

/// Defines a stats struct, its parser and its raw accessors.
macro_rules! stats_struct {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$doc:meta])* $key:literal => $field:ident : $ty:ty, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize))]
        #[non_exhaustive]
        pub struct $name {
            $(
                $(#[$doc])*
                #[doc = concat!("\n\nKey `", $key, "`.")]
                #[cfg_attr(feature = "serde", serde(rename = $key))]
                pub $field: $ty,
            )*
            #[cfg_attr(feature = "serde", serde(skip))]
            raw: Bytes,
        }

        impl $name {
            /// Parses a YAML body. Never fails: unparsable or missing
            /// values leave their field at its default.
            pub fn parse(body: Bytes) -> Self {
                let mut stats = Self::default();
                for (key, value) in entries(&body) {
                    match key {
                        $( $key => {
                            if let Some(v) = FromStat::from_stat(&body, value) {
                                stats.$field = v;
                            }
                        } )*
                        _ => {}
                    }
                }
                stats.raw = body;
                stats
            }

            /// The value of any key, known or not, as the server sent it
            /// (without quotes).
            pub fn get(&self, key: &str) -> Option<&str> {
                entries(&self.raw).find(|(k, _)| *k == key).map(|(_, v)| v)
            }

            /// Every `key: value` pair, in the server's order.
            pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
                entries(&self.raw)
            }

            /// The YAML body as received.
            pub fn raw(&self) -> &Bytes {
                &self.raw
            }
        }
    };
}

/// The state of a job, from `stats-job`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "lowercase")
)]
#[non_exhaustive]
pub enum JobState {
    /// Waiting to be reserved.
    Ready,
    /// Waiting for its delay to pass.
    Delayed,
    /// Held by a worker.
    Reserved,
    /// Set aside until kicked.
    Buried,
    /// A state this client does not know (see `get("state")`).
    #[default]
    Unknown,
}

stats_struct! {
    /// The answer to `stats-job`.
    pub struct JobStats {
        /// The job's id.
        "id" => id: u64,
        /// The tube holding the job.
        "tube" => tube: Text,
        /// The job's state.
        "state" => state: JobState,
        /// Priority, as set by put, release or bury.
        "pri" => pri: u32,
        /// Seconds since the job was put.
        "age" => age: u64,
        /// The delay it was put or released with, in seconds.
        "delay" => delay: u64,
        /// Time-to-run in seconds.
        "ttr" => ttr: u64,
        /// Seconds until a reserved job times out or a delayed job is ready.
        "time-left" => time_left: u64,
        /// The binlog file holding the job (0 without `-b`).
        "file" => file: u64,
        /// Times reserved.
        "reserves" => reserves: u64,
        /// Times its reservation timed out.
        "timeouts" => timeouts: u64,
        /// Times released.
        "releases" => releases: u64,
        /// Times buried.
        "buries" => buries: u64,
        /// Times kicked.
        "kicks" => kicks: u64,
    }
}

stats_struct! {
    /// The answer to `stats-tube`.
    pub struct TubeStats {
        /// The tube's name.
        "name" => name: Text,
        /// Ready jobs with priority below 1024.
        "current-jobs-urgent" => current_jobs_urgent: u64,
        /// Ready jobs.
        "current-jobs-ready" => current_jobs_ready: u64,
        /// Reserved jobs.
        "current-jobs-reserved" => current_jobs_reserved: u64,
        /// Delayed jobs.
        "current-jobs-delayed" => current_jobs_delayed: u64,
        /// Buried jobs.
        "current-jobs-buried" => current_jobs_buried: u64,
        /// Jobs ever created in this tube.
        "total-jobs" => total_jobs: u64,
        /// Connections using this tube.
        "current-using" => current_using: u64,
        /// Connections watching this tube.
        "current-watching" => current_watching: u64,
        /// Connections waiting in `reserve` on this tube.
        "current-waiting" => current_waiting: u64,
        /// `delete` commands for jobs of this tube.
        "cmd-delete" => cmd_delete: u64,
        /// `pause-tube` commands for this tube.
        "cmd-pause-tube" => cmd_pause_tube: u64,
        /// The pause, in seconds, set by the last `pause-tube`.
        "pause" => pause: u64,
        /// Seconds until the pause ends.
        "pause-time-left" => pause_time_left: u64,
    }
}

stats_struct! {
    /// The answer to `stats`.
    pub struct ServerStats {
        /// Ready jobs with priority below 1024.
        "current-jobs-urgent" => current_jobs_urgent: u64,
        /// Ready jobs.
        "current-jobs-ready" => current_jobs_ready: u64,
        /// Reserved jobs.
        "current-jobs-reserved" => current_jobs_reserved: u64,
        /// Delayed jobs.
        "current-jobs-delayed" => current_jobs_delayed: u64,
        /// Buried jobs.
        "current-jobs-buried" => current_jobs_buried: u64,
        /// `put` commands.
        "cmd-put" => cmd_put: u64,
        /// `peek` commands.
        "cmd-peek" => cmd_peek: u64,
        /// `peek-ready` commands.
        "cmd-peek-ready" => cmd_peek_ready: u64,
        /// `peek-delayed` commands.
        "cmd-peek-delayed" => cmd_peek_delayed: u64,
        /// `peek-buried` commands.
        "cmd-peek-buried" => cmd_peek_buried: u64,
        /// `reserve` commands.
        "cmd-reserve" => cmd_reserve: u64,
        /// `reserve-with-timeout` commands.
        "cmd-reserve-with-timeout" => cmd_reserve_with_timeout: u64,
        /// `delete` commands.
        "cmd-delete" => cmd_delete: u64,
        /// `release` commands.
        "cmd-release" => cmd_release: u64,
        /// `use` commands.
        "cmd-use" => cmd_use: u64,
        /// `watch` commands.
        "cmd-watch" => cmd_watch: u64,
        /// `ignore` commands.
        "cmd-ignore" => cmd_ignore: u64,
        /// `bury` commands.
        "cmd-bury" => cmd_bury: u64,
        /// `kick` commands.
        "cmd-kick" => cmd_kick: u64,
        /// `touch` commands.
        "cmd-touch" => cmd_touch: u64,
        /// `stats` commands.
        "cmd-stats" => cmd_stats: u64,
        /// `stats-job` commands.
        "cmd-stats-job" => cmd_stats_job: u64,
        /// `stats-tube` commands.
        "cmd-stats-tube" => cmd_stats_tube: u64,
        /// `list-tubes` commands.
        "cmd-list-tubes" => cmd_list_tubes: u64,
        /// `list-tube-used` commands.
        "cmd-list-tube-used" => cmd_list_tube_used: u64,
        /// `list-tubes-watched` commands.
        "cmd-list-tubes-watched" => cmd_list_tubes_watched: u64,
        /// `pause-tube` commands.
        "cmd-pause-tube" => cmd_pause_tube: u64,
        /// Reservations that timed out.
        "job-timeouts" => job_timeouts: u64,
        /// Jobs ever created.
        "total-jobs" => total_jobs: u64,
        /// The largest job body accepted (`-z`).
        "max-job-size" => max_job_size: u64,
        /// Tubes that exist.
        "current-tubes" => current_tubes: u64,
        /// Open connections.
        "current-connections" => current_connections: u64,
        /// Connections that have put at least once.
        "current-producers" => current_producers: u64,
        /// Connections that have reserved at least once.
        "current-workers" => current_workers: u64,
        /// Connections waiting in `reserve`.
        "current-waiting" => current_waiting: u64,
        /// Connections ever accepted.
        "total-connections" => total_connections: u64,
        /// The server's process id.
        "pid" => pid: u64,
        /// The server's version string.
        "version" => version: Text,
        /// User CPU seconds used.
        "rusage-utime" => rusage_utime: f64,
        /// System CPU seconds used.
        "rusage-stime" => rusage_stime: f64,
        /// Seconds since the server started.
        "uptime" => uptime: u64,
        /// Index of the oldest binlog file needed.
        "binlog-oldest-index" => binlog_oldest_index: u64,
        /// Index of the binlog file being written.
        "binlog-current-index" => binlog_current_index: u64,
        /// Records written to the binlog.
        "binlog-records-written" => binlog_records_written: u64,
        /// Records moved during binlog compaction.
        "binlog-records-migrated" => binlog_records_migrated: u64,
        /// The largest binlog file size.
        "binlog-max-size" => binlog_max_size: u64,
        /// Whether the server is draining (refusing puts).
        "draining" => draining: bool,
        /// A random id of this server process.
        "id" => id: Text,
        /// The server's host name.
        "hostname" => hostname: Text,
        /// The server's operating system.
        "os" => os: Text,
        /// The server's machine architecture.
        "platform" => platform: Text,
    }
}

/// The answer to `list-tubes` and `list-tubes-watched`: tube names, read
/// lazily from the YAML list without copying.
///
/// ```
/// use beanstalk_proto::stats::TubeList;
/// use bytes::Bytes;
/// let list = TubeList::parse(Bytes::from_static(b"---\n- default\n- emails\n"));
/// assert_eq!(list.iter().collect::<Vec<_>>(), ["default", "emails"]);
/// assert!(list.contains("emails"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TubeList {
    raw: Bytes,
}

impl TubeList {
    /// Wraps a YAML list body.
    pub fn parse(body: Bytes) -> Self {
        Self { raw: body }
    }

    /// The tube names, in the server's order. Items that are not valid
    /// names are skipped.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.raw.split(|&b| b == b'\n').filter_map(|line| {
            let name = line.strip_prefix(b"- ")?;
            let name = name
                .strip_prefix(b"\"")
                .and_then(|n| n.strip_suffix(b"\""))
                .unwrap_or(name);
            if is_valid_tube_name(name) {
                core::str::from_utf8(name).ok()
            } else {
                None
            }
        })
    }

    /// The number of tubes.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// Whether `name` is in the list.
    pub fn contains(&self, name: &str) -> bool {
        self.iter().any(|n| n == name)
    }

    /// The names as [`Tube`]s, sharing this list's buffer.
    pub fn to_tubes(&self) -> Vec<Tube> {
        self.iter()
            .map(|name| Tube::from_validated(slice_of(&self.raw, name)))
            .collect()
    }

    /// The YAML body as received.
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }
}
