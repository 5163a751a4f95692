//! Tubes: `use`, `watch`, `ignore`, `pause-tube` and the three lists.
//!
//! `use` and the watch list are per-connection state. The connection keeps
//! them as the server last confirmed them (see
//! [`crate::Connection::session`]) so a driver can restore them on a new
//! connection.

use crate::cmd::{encode_numbers, encode_tube, request};
use crate::error::CommandError;
use crate::frame::ReplyWord;
use crate::stats::TubeList;
use crate::tube::{IntoTube, Tube};

/// Defines a command that takes one tube and records it as session state.
macro_rules! session_command {
    ($(#[$doc:meta])* $name:ident, $kind:ident, $word:literal -> $output:ty, $ok:pat => $value:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name {
            tube: Tube,
        }

        impl $name {
            #[doc = concat!("`", $word, "` of `tube`.")]
            pub fn new(tube: impl IntoTube) -> Result<Self, CommandError> {
                Ok(Self {
                    tube: tube.into_tube()?,
                })
            }

            /// The tube named.
            pub fn tube(&self) -> &Tube {
                &self.tube
            }
        }

        request!($name => $kind -> $output,
            encode(|this, dst| encode_tube(dst, $word, &this.tube, &[])),
            reply($ok => $value),
            fn session_tube(&self) -> Option<&Tube> {
                Some(&self.tube)
            }
        );
    };
}

session_command!(
    /// `use <tube>\r\n`: later puts (and `kick`, `peek-ready`,
    /// `peek-delayed`, `peek-buried`) go to this tube. Replies
    /// `USING <tube>`; returns the tube.
    ///
    /// # Wire format
    /// ```
    /// # use beanstalk_proto::{cmd::Use, Connection, WriteBuf};
    /// # use bytes::Buf;
    /// let mut out = WriteBuf::new();
    /// Connection::default().send(&Use::new("emails")?, &mut out)?;
    /// assert_eq!(out.chunk(), b"use emails\r\n");
    /// # Ok::<(), beanstalk_proto::CommandError>(())
    /// ```
    Use, Use, "use" -> Tube, R::Using(tube) => tube
);

session_command!(
    /// `watch <tube>\r\n`: adds the tube to the watch list that `reserve`
    /// takes jobs from. Replies `WATCHING <count>`; returns the count.
    ///
    /// # Wire format
    /// ```
    /// # use beanstalk_proto::{cmd::Watch, Connection, WriteBuf};
    /// # use bytes::Buf;
    /// let mut out = WriteBuf::new();
    /// Connection::default().send(&Watch::new("emails")?, &mut out)?;
    /// assert_eq!(out.chunk(), b"watch emails\r\n");
    /// # Ok::<(), beanstalk_proto::CommandError>(())
    /// ```
    Watch, Watch, "watch" -> u64, R::Watching(count) => count
);

session_command!(
    /// `ignore <tube>\r\n`: removes the tube from the watch list. Replies
    /// `WATCHING <count>`, or `NOT_IGNORED` for the last watched tube.
    ///
    /// # Wire format
    /// ```
    /// # use beanstalk_proto::{cmd::Ignore, Connection, WriteBuf};
    /// # use bytes::Buf;
    /// let mut out = WriteBuf::new();
    /// Connection::default().send(&Ignore::new("default")?, &mut out)?;
    /// assert_eq!(out.chunk(), b"ignore default\r\n");
    /// # Ok::<(), beanstalk_proto::CommandError>(())
    /// ```
    Ignore, Ignore, "ignore" -> u64, R::Watching(count) => count
);

/// `pause-tube <tube> <seconds>\r\n`: no job of the tube is reserved for
/// `seconds`. 0 ends a pause. Replies `PAUSED`, or `NOT_FOUND` for a tube
/// that does not exist. Pauses are lost when the server restarts.
///
/// # Wire format
/// ```
/// # use beanstalk_proto::{cmd::PauseTube, Connection, WriteBuf};
/// # use bytes::Buf;
/// let mut out = WriteBuf::new();
/// Connection::default().send(&PauseTube::new("emails", 30)?, &mut out)?;
/// assert_eq!(out.chunk(), b"pause-tube emails 30\r\n");
/// # Ok::<(), beanstalk_proto::CommandError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PauseTube {
    tube: Tube,
    seconds: u32,
}

impl PauseTube {
    /// Pauses `tube` for `seconds`.
    pub fn new(tube: impl IntoTube, seconds: u32) -> Result<Self, CommandError> {
        Ok(Self {
            tube: tube.into_tube()?,
            seconds,
        })
    }
}

request!(PauseTube => PauseTube -> (),
    encode(|this, dst| encode_tube(dst, "pause-tube", &this.tube, &[this.seconds.into()])),
    reply(R::Word(ReplyWord::Paused) => ())
);

/// `list-tubes\r\n`: every tube that exists. Replies `OK` and a YAML list.
///
/// # Wire format
/// `list-tubes\r\n`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ListTubes;

request!(ListTubes => ListTubes -> TubeList,
    encode(|_this, dst| encode_numbers(dst, "list-tubes", [])),
    reply(R::Yaml(body) => TubeList::parse(body))
);

/// `list-tubes-watched\r\n`: this connection's watch list.
///
/// # Wire format
/// `list-tubes-watched\r\n`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ListTubesWatched;

request!(ListTubesWatched => ListTubesWatched -> TubeList,
    encode(|_this, dst| encode_numbers(dst, "list-tubes-watched", [])),
    reply(R::Yaml(body) => TubeList::parse(body))
);

/// `list-tube-used\r\n`: the tube this connection puts into. Replies
/// `USING <tube>`.
///
/// # Wire format
/// `list-tube-used\r\n`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ListTubeUsed;

request!(ListTubeUsed => ListTubeUsed -> Tube,
    encode(|_this, dst| encode_numbers(dst, "list-tube-used", [])),
    reply(R::Using(tube) => tube)
);
