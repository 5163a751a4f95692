//! Opening connections: addresses, timeouts and limits.

use std::time::Duration;

use proto::{Config, Endpoint, Error};

use crate::client::Client;
use crate::stream::Stream;

/// The read timeout for commands the server answers at once (the seed
/// design's 5 s).
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// How long to wait for a TCP connection to be accepted.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Configures and opens a [`Client`].
///
/// ```
/// # let server = beanstalk_test_support::Server::start();
/// # let address = server.url();
/// use beanstalk_blocking::{Builder, Commands};
/// use std::time::Duration;
///
/// let mut client = Builder::new()
///     .read_timeout(Duration::from_secs(2))
///     .max_job_size(1 << 20)
///     .connect(&address)?;
/// assert_eq!(client.list_tube_used()?.as_str(), "default");
/// # Ok::<(), beanstalk_blocking::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    pub(crate) read_timeout: Duration,
    pub(crate) write_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) config: Config,
}

impl Default for Builder {
    fn default() -> Self {
        Self {
            read_timeout: DEFAULT_READ_TIMEOUT,
            write_timeout: DEFAULT_READ_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            config: Config::default(),
        }
    }
}

impl Builder {
    /// Default settings: 5 s read and write timeouts, 10 s connect timeout,
    /// 65,535-byte jobs.
    pub fn new() -> Self {
        Self::default()
    }

    /// How long to wait for a reply the server sends at once. `reserve`
    /// waits without limit and `reserve-with-timeout` waits its own timeout
    /// plus this.
    #[must_use]
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// How long a write may make no progress.
    #[must_use]
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout;
        self
    }

    /// How long to wait for the TCP handshake.
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The largest job this client sends or accepts; match the server's
    /// `-z` (default 65,535).
    #[must_use]
    pub fn max_job_size(mut self, bytes: u32) -> Self {
        self.config = self.config.max_job_size(bytes);
        self
    }

    /// Replaces the core's limits wholesale.
    #[must_use]
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Connects to `address`: `host:port`, `beanstalk://host[:port]`,
    /// `[v6]:port`, `unix:///path` or a plain path.
    pub fn connect(&self, address: &str) -> Result<Client, Error> {
        self.connect_endpoint(&address.parse()?)
    }

    /// Connects to the address in `BEANSTALKD_URL`, or `127.0.0.1:11300`.
    pub fn connect_default(&self) -> Result<Client, Error> {
        self.connect_endpoint(&Endpoint::from_env()?)
    }

    /// Connects to a parsed endpoint.
    pub fn connect_endpoint(&self, endpoint: &Endpoint) -> Result<Client, Error> {
        let stream = Stream::connect(endpoint, self.connect_timeout)?;
        stream.set_write_timeout(Some(self.write_timeout))?;
        Ok(Client::new(stream, self.clone(), endpoint.clone()))
    }
}
