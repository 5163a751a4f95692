//! Per-connection limits.

use crate::frame::{DEFAULT_MAX_YAML_BODY, Limits};

/// beanstalkd's default `max-job-size` (`-z`).
pub const DEFAULT_MAX_JOB_SIZE: u32 = 65_535;

/// The largest `max-job-size` beanstalkd can be configured with (1 GiB).
pub const MAX_SERVER_JOB_SIZE: u32 = 1 << 30;

/// Limits one [`crate::Connection`] enforces on what it sends and receives.
///
/// ```
/// use beanstalk_proto::Config;
/// // For a server started with `beanstalkd -z 1048576`:
/// let config = Config::default().max_job_size(1 << 20);
/// assert_eq!(config.job_size_limit(), 1 << 20);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    max_job_size: u32,
    max_yaml_body: usize,
}

impl Default for Config {
    /// Jobs up to 65,535 bytes (the server's default) and YAML bodies up to
    /// 1 MiB.
    fn default() -> Self {
        Self {
            max_job_size: DEFAULT_MAX_JOB_SIZE,
            max_yaml_body: DEFAULT_MAX_YAML_BODY,
        }
    }
}

impl Config {
    /// Sets the largest job body this connection sends or accepts. Match it
    /// to the server's `-z`; values above 1 GiB, the server's own ceiling,
    /// are lowered to 1 GiB.
    #[must_use]
    pub fn max_job_size(mut self, bytes: u32) -> Self {
        self.max_job_size = bytes.min(MAX_SERVER_JOB_SIZE);
        self
    }

    /// Sets the largest `stats` or tube-list body accepted.
    #[must_use]
    pub fn max_yaml_body(mut self, bytes: usize) -> Self {
        self.max_yaml_body = bytes;
        self
    }

    /// The job-size limit in force.
    pub fn job_size_limit(&self) -> u32 {
        self.max_job_size
    }

    /// The decoding limits that follow from this configuration.
    pub fn limits(&self) -> Limits {
        Limits {
            max_job_body: self.max_job_size as usize,
            max_yaml_body: self.max_yaml_body,
        }
    }
}
