//! Opening connections.

use proto::{Endpoint, Error, Options};

use crate::client::Client;
use crate::stream::Stream;

impl Client {
    /// Connects to `address` with default [`Options`]: `host:port`,
    /// `beanstalk://host[:port]`, `[v6]:port`, `unix:///path` or a plain
    /// path.
    pub fn connect(address: &str) -> Result<Self, Error> {
        Self::connect_with(address, Options::default())
    }

    /// Connects to `BEANSTALKD_URL`, or `127.0.0.1:11300` when it is unset.
    pub fn connect_default() -> Result<Self, Error> {
        Self::connect_endpoint(&Endpoint::from_env()?, Options::default())
    }

    /// Connects to `address` with the given timeouts and limits.
    ///
    /// ```
    /// # let server = beanstalk_test_support::Server::start();
    /// # let address = server.url();
    /// use beanstalk_blocking::{Client, Commands, Options};
    /// use std::time::Duration;
    ///
    /// let options = Options::default().read_timeout(Duration::from_secs(2)).max_job_size(1 << 20);
    /// let mut client = Client::connect_with(&address, options)?;
    /// assert_eq!(client.list_tube_used()?.as_str(), "default");
    /// # Ok::<(), beanstalk_blocking::Error>(())
    /// ```
    pub fn connect_with(address: &str, options: Options) -> Result<Self, Error> {
        Self::connect_endpoint(&address.parse()?, options)
    }

    /// Connects to a parsed endpoint.
    pub fn connect_endpoint(endpoint: &Endpoint, options: Options) -> Result<Self, Error> {
        let options = options.checked()?;
        let stream = Stream::connect(endpoint, options.connect_timeout)?;
        stream.set_write_timeout(Some(options.write_timeout))?;
        Ok(Self::new(stream, options, endpoint.clone()))
    }
}
