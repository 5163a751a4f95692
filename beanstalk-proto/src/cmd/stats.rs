//! `stats`, `stats-tube`, `stats-job`: the server's YAML dictionaries,
//! parsed into [`crate::stats`] types.

use crate::cmd::{encode_numbers, encode_tube, request};
use crate::error::CommandError;
use crate::response::JobId;
use crate::stats::{JobStats, ServerStats, TubeStats};
use crate::tube::{IntoTube, Tube};

/// `stats\r\n`: server-wide counters. Replies `OK <bytes>` and YAML.
///
/// # Wire format
/// ```
/// # use beanstalk_proto::{cmd::Stats, Connection, WriteBuf};
/// # use bytes::Buf;
/// let mut out = WriteBuf::new();
/// Connection::default().send(&Stats, &mut out)?;
/// assert_eq!(out.chunk(), b"stats\r\n");
/// # Ok::<(), beanstalk_proto::CommandError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats;

request!(Stats => Stats -> ServerStats,
    encode(|_this, dst| encode_numbers(dst, "stats", [])),
    reply(R::Yaml(body) => ServerStats::parse(body))
);

/// `stats-tube <tube>\r\n`: one tube's counters. Replies `OK` and YAML, or
/// `NOT_FOUND` for a tube that does not exist (tubes vanish when unused
/// and empty).
///
/// # Wire format
/// ```
/// # use beanstalk_proto::{cmd::StatsTube, Connection, WriteBuf};
/// # use bytes::Buf;
/// let mut out = WriteBuf::new();
/// Connection::default().send(&StatsTube::new("emails")?, &mut out)?;
/// assert_eq!(out.chunk(), b"stats-tube emails\r\n");
/// # Ok::<(), beanstalk_proto::CommandError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsTube {
    tube: Tube,
}

impl StatsTube {
    /// Stats of `tube`.
    pub fn new(tube: impl IntoTube) -> Result<Self, CommandError> {
        Ok(Self {
            tube: tube.into_tube()?,
        })
    }
}

request!(StatsTube => StatsTube -> TubeStats,
    encode(|this, dst| encode_tube(dst, "stats-tube", &this.tube, &[])),
    reply(R::Yaml(body) => TubeStats::parse(body))
);

/// `stats-job <id>\r\n`: one job's state and counters. Replies `OK` and
/// YAML, or `NOT_FOUND`.
///
/// # Wire format
/// ```
/// # use beanstalk_proto::{cmd::StatsJob, Connection, WriteBuf};
/// # use bytes::Buf;
/// let mut out = WriteBuf::new();
/// Connection::default().send(&StatsJob::new(42), &mut out)?;
/// assert_eq!(out.chunk(), b"stats-job 42\r\n");
/// # Ok::<(), beanstalk_proto::CommandError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsJob {
    id: JobId,
}

impl StatsJob {
    /// Stats of job `id`.
    pub const fn new(id: JobId) -> Self {
        Self { id }
    }
}

request!(StatsJob => StatsJob -> JobStats,
    encode(|this, dst| encode_numbers(dst, "stats-job", [this.id])),
    reply(R::Yaml(body) => JobStats::parse(body)),
    fn job_id(&self) -> Option<JobId> {
        Some(self.id)
    }
);
