//! Where a server listens: the address forms every adapter accepts.
//!
//! Parsing lives here, once, so `beanstalk://`, `unix://`, IPv6 brackets
//! and the `BEANSTALKD_URL` default mean the same thing in every adapter.

use core::fmt;
use core::str::FromStr;

use alloc::string::{String, ToString};

/// beanstalkd's default TCP port.
pub const DEFAULT_PORT: u16 = 11300;

/// The environment variable read when no address is given.
pub const ENV_VAR: &str = "BEANSTALKD_URL";

/// The address used when none is given and [`ENV_VAR`] is unset.
pub const DEFAULT_ADDRESS: &str = "127.0.0.1:11300";

/// A server address.
///
/// Accepted forms: `host:port`, `host` (port 11300), `beanstalk://host[:port]`,
/// `[::1]:port` and `beanstalk://[::1]`, `unix:///path/to.sock` (or
/// `unix:/path/to.sock`, an absolute path), and a plain path containing `/`. A host is a name
/// or an IP literal: user info (`user@`), a path or a query after it, or a
/// space, is refused with the reason, before any connection is tried.
///
/// ```
/// use beanstalk_proto::Endpoint;
/// assert_eq!("beanstalk://queue.local".parse(), Ok(Endpoint::tcp("queue.local", 11300)));
/// assert_eq!("[::1]:7000".parse(), Ok(Endpoint::tcp("::1", 7000)));
/// assert_eq!("unix:///run/beanstalkd.sock".parse(), Ok(Endpoint::unix("/run/beanstalkd.sock")));
/// assert_eq!("./bs.sock".parse(), Ok(Endpoint::unix("./bs.sock")));
/// assert!("beanstalk://host:99999".parse::<Endpoint>().is_err());
/// assert!("beanstalk://user@host:11300".parse::<Endpoint>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Endpoint {
    /// A TCP host (name or IP literal, without brackets) and port.
    Tcp {
        /// Host name or IP address.
        host: String,
        /// Port.
        port: u16,
    },
    /// A Unix domain socket path.
    Unix(String),
}

impl Endpoint {
    /// A TCP endpoint.
    pub fn tcp(host: impl Into<String>, port: u16) -> Self {
        Self::Tcp {
            host: host.into(),
            port,
        }
    }

    /// A Unix socket endpoint.
    pub fn unix(path: impl Into<String>) -> Self {
        Self::Unix(path.into())
    }

    /// The address in [`ENV_VAR`], or [`DEFAULT_ADDRESS`] when it is unset
    /// or empty.
    #[cfg(feature = "std")]
    pub fn from_env() -> Result<Self, AddressError> {
        match std::env::var(ENV_VAR) {
            Ok(value) if !value.trim().is_empty() => value.trim().parse(),
            _ => DEFAULT_ADDRESS.parse(),
        }
    }

    /// The error a connect helper returns for an endpoint this build
    /// cannot reach: a Unix socket path off Unix, or a kind of endpoint
    /// newer than the adapter. Adapters match the kinds they connect to
    /// and send every other one here, so the message is the same in all.
    ///
    /// ```
    /// use beanstalk_proto::Endpoint;
    ///
    /// let error = Endpoint::unix("/run/beanstalkd.sock").unsupported_here();
    /// assert_eq!(error.kind(), std::io::ErrorKind::Unsupported);
    /// ```
    #[cfg(feature = "std")]
    pub fn unsupported_here(&self) -> std::io::Error {
        let reason = match self {
            Self::Unix(_) => "Unix domain sockets need a Unix platform",
            Self::Tcp { .. } => "unsupported endpoint",
        };
        std::io::Error::new(std::io::ErrorKind::Unsupported, reason)
    }
}

/// An address that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid beanstalkd address {address:?}: {reason}")]
pub struct AddressError {
    address: String,
    reason: &'static str,
}

impl AddressError {
    fn new(address: &str, reason: &'static str) -> Self {
        Self {
            address: address.to_string(),
            reason,
        }
    }
}

impl FromStr for Endpoint {
    type Err = AddressError;

    fn from_str(address: &str) -> Result<Self, AddressError> {
        // `unix:` and an absolute path, as beanstalkd's own `-l unix:...`
        // spells it (`unix:11300` is a host named `unix`).
        if let Some(path) = address
            .strip_prefix("unix://")
            .or_else(|| address.strip_prefix("unix:").filter(|p| p.starts_with('/')))
        {
            return if path.is_empty() {
                Err(AddressError::new(address, "empty socket path"))
            } else {
                Ok(Self::unix(path))
            };
        }
        let host_port = match address.strip_prefix("beanstalk://") {
            Some(rest) => {
                let rest = rest.strip_suffix('/').unwrap_or(rest);
                if rest.contains(['/', '?', '#']) {
                    return Err(AddressError::new(
                        address,
                        "a beanstalkd address has no path or query",
                    ));
                }
                rest
            }
            None if address.contains("://") => {
                return Err(AddressError::new(
                    address,
                    "scheme must be beanstalk:// or unix://",
                ));
            }
            None if address.contains('/') => return Ok(Self::unix(address)),
            None => address,
        };
        let (host, port) =
            split_host_port(host_port).map_err(|reason| AddressError::new(address, reason))?;
        Ok(Self::tcp(host, port))
    }
}

fn split_host_port(text: &str) -> Result<(&str, u16), &'static str> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or("missing ']' after IPv6 address")?;
        match after {
            "" => (host, None),
            _ => (
                host,
                Some(after.strip_prefix(':').ok_or("expected ':' after ']'")?),
            ),
        }
    } else {
        match text.rsplit_once(':') {
            Some((host, _)) if host.contains(':') => {
                return Err("IPv6 addresses need brackets, as in [::1]:11300");
            }
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if host.is_empty() {
        return Err("empty host");
    }
    if host.contains('@') {
        return Err("user info (user@) is not part of a beanstalkd address");
    }
    // A name's letters, digits, `-`, `.` and `_`; an IPv6 literal's hex
    // digits and `:`, and a zone after `%`.
    let fits = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':' | '%');
    if !host.chars().all(fits) {
        return Err("a host is a name or an IP address, without spaces or other signs");
    }
    let port = match port {
        None => DEFAULT_PORT,
        // Digits only: `u16` parsing would take a leading `+`.
        Some(port) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => port
            .parse()
            .map_err(|_| "port must be a number from 0 to 65535")?,
        Some(_) => return Err("port must be a number from 0 to 65535"),
    };
    Ok((host, port))
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Self::Tcp { host, port } => write!(f, "{host}:{port}"),
            Self::Unix(path) => write!(f, "unix://{path}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let cases = [
            ("127.0.0.1:11300", Endpoint::tcp("127.0.0.1", 11300)),
            ("localhost", Endpoint::tcp("localhost", 11300)),
            ("beanstalk://h:1", Endpoint::tcp("h", 1)),
            ("beanstalk://h/", Endpoint::tcp("h", 11300)),
            ("beanstalk://[::1]", Endpoint::tcp("::1", 11300)),
            ("[fe80::1]:5", Endpoint::tcp("fe80::1", 5)),
            ("unix:///tmp/x.sock", Endpoint::unix("/tmp/x.sock")),
            ("/tmp/x.sock", Endpoint::unix("/tmp/x.sock")),
            ("unix:/tmp/x.sock", Endpoint::unix("/tmp/x.sock")),
            ("unix:11300", Endpoint::tcp("unix", 11300)),
            (
                "beanstalk://[fe80::1%eth0]:5",
                Endpoint::tcp("fe80::1%eth0", 5),
            ),
            (
                "queue_1.example-2.net",
                Endpoint::tcp("queue_1.example-2.net", 11300),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(text.parse::<Endpoint>(), Ok(expected.clone()), "{text}");
            assert_eq!(
                expected.to_string().parse::<Endpoint>(),
                Ok(expected),
                "{text} round trip"
            );
        }
        for bad in [
            "",
            ":1",
            "h:",
            "h:x",
            "h:65536",
            "::1",
            "[::1",
            "[::1]x",
            "http://h",
            "unix://",
            "unix:",
            "beanstalk://user@h:1",
            "user@h",
            "beanstalk://h/x",
            "beanstalk://h:1/x",
            "beanstalk://h?x=1",
            "beanstalk://h#x",
            " h:1",
            "h :1",
            "h: 1",
            "h:+5",
            "h:-5",
            "beanstalk://[::1 ]:5",
            "h\t:1",
        ] {
            assert!(bad.parse::<Endpoint>().is_err(), "{bad:?}");
        }
    }
}
