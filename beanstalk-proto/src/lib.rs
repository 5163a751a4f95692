//! The beanstalkd protocol without I/O.
//!
//! `beanstalk-proto` knows the whole beanstalkd protocol and nothing about
//! sockets, clocks or runtimes: it turns commands into bytes and bytes into
//! typed replies. It is fully deterministic, `no_std` (with `alloc`), and
//! the one place protocol knowledge lives; the adapters `beanstalk-blocking`,
//! `beanstalk-tokio` and `beanstalk-async-std` only move its bytes.
//!
//! # Layers
//! - [`cmd`]: the 25 commands as typed values. Constructors validate every
//!   argument (tube names, number ranges, line length, job size), so nothing
//!   malformed can reach the wire.
//! - [`frame`]: stateless, allocation-free parsing of one reply from a byte
//!   slice (`httparse`-style). Use it directly if you manage buffers
//!   yourself.
//! - [`Connection`]: the state machine. It queues commands in flight (so
//!   pipelining is natural), matches each reply to its command, splits
//!   bodies off the read buffer without copying, tracks `use`/`watch` as the
//!   server confirmed them, and breaks for good on anything that could
//!   desynchronise the stream.
//! - [`stats`]: typed `stats`, `stats-tube`, `stats-job` and tube lists.
//! - [`Commands`] / [`AsyncCommands`]: the command set written once. A
//!   driver implements one `execute` method and gets all 25 commands.
//! - [`retry`], [`lease`], [`reconnect`], [`worker`]: the policy of
//!   reconnecting clients and workers: backoff, which commands may be
//!   re-sent after a broken connection, which jobs a connection holds, what
//!   to do after a handler failed, when to touch.
//! - [`reconnecting::Reconnecting`]: the async adapters' reconnecting
//!   client, over the connection type each one brings.
//! - [`error`]: errors split by blame: the caller's ([`CommandError`]), a
//!   normal outcome ([`Error::NotFound`], ...), the server's
//!   ([`ServerError`]), or a broken stream ([`ProtocolError`]).
//!
//! # Driving it
//! ```
//! use beanstalk_proto::{cmd, Connection, PutOptions, Request, WriteBuf};
//! use bytes::{Buf, BytesMut};
//!
//! let mut conn = Connection::default();
//! let mut out = WriteBuf::new();
//!
//! // 1. Encode any number of commands (pipelining).
//! conn.send(&cmd::Use::new("emails")?, &mut out)?;
//! conn.send(&cmd::Put::new(&b"hello"[..], PutOptions::default())?, &mut out)?;
//! // 2. Write `out` to the socket (here: check it).
//! assert_eq!(out.chunk(), b"use emails\r\nput 1024 0 60 5\r\nhello\r\n");
//!
//! // 3. Feed what the socket returns; replies come out in order, typed.
//! let mut input = BytesMut::from(&b"USING emails\r\nINSERTED 9\r\n"[..]);
//! let (_, using) = conn.poll_response(&mut input)?.expect("whole reply");
//! assert_eq!(cmd::Use::from_response(using)?.as_str(), "emails");
//! let (_, inserted) = conn.poll_response(&mut input)?.expect("whole reply");
//! assert_eq!(cmd::Put::from_response(inserted)?.id, 9);
//! assert_eq!(conn.session().using().as_str(), "emails");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A reply that does not fit its command, a malformed line, an oversized
//! body or a missing CRLF break the connection; from then on every call
//! fails, so a stray reply can never be taken for the answer to a later
//! command.
//!
//! # Features
//! - `std` (default): `std::io::Error` in [`Error`], vectored-write
//!   support in [`WriteBuf`], `Endpoint::from_env` (`BEANSTALKD_URL`), the
//!   async adapters' worker loop (`worker::Pool`, `Slot`, `Handler`,
//!   `Shutdown`), `mux::reply_slot`, `read_scratch`, and the socket
//!   queries of `read_low_water` (`SO_RCVLOWAT`, `SIOCOUTQ`).
//! - `serde`: `Serialize` for the stats types, [`Tube`] and [`TubeList`]
//!   (stats keys keep the server's names, such as `current-jobs-ready`).
#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![cfg_attr(
    not(test),
    warn(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

extern crate alloc;

pub mod api;
pub mod batch;
pub mod cmd;
pub mod config;
pub mod connection;
pub mod endpoint;
pub mod error;
pub mod frame;
pub mod lease;
pub mod mux;
pub mod options;
pub mod read_low_water;
#[cfg(feature = "std")]
pub mod read_scratch;
pub mod read_size;
pub mod reconnect;
pub mod reconnecting;
pub mod replay;
pub mod reply_watch;
pub mod response;
pub mod retry;
pub mod stats;
pub mod tube;
pub mod worker;
pub mod write_buf;
pub mod write_pacing;

pub use api::{AsyncCommands, AsyncExecute, Commands, Execute};
pub use cmd::{Body, PutOptions, PutReceipt, ReleaseOutcome, ReplyTimeout, Request};
pub use config::Config;
pub use connection::{Connection, Session, State, Token};
pub use endpoint::{AddressError, Endpoint};
pub use error::{CommandError, Error, ProtocolError, ServerError};
pub use frame::ReplyWord;
pub use options::Options;
pub use response::{Job, JobId, Response};
pub use stats::{JobStats, ServerStats, TubeList, TubeStats};
pub use tube::{IntoTube, Tube};
pub use write_buf::WriteBuf;
