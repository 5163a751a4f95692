//! `quit`: closes the connection.

use crate::cmd::{CommandKind, Request, encode_numbers};
use crate::error::Error;
use crate::response::Response;
use crate::write_buf::WriteBuf;

/// `quit\r\n`: the server closes the connection after answering everything
/// sent before it. There is no reply; jobs this connection reserved go
/// back to ready at once.
///
/// After sending it, [`crate::Connection`] refuses further commands and
/// treats the coming end of stream as normal.
///
/// # Wire format
/// ```
/// # use beanstalk_proto::{cmd::Quit, Connection, WriteBuf};
/// # use bytes::Buf;
/// let mut out = WriteBuf::new();
/// Connection::default().send(&Quit, &mut out)?;
/// assert_eq!(out.chunk(), b"quit\r\n");
/// # Ok::<(), beanstalk_proto::CommandError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Quit;

impl Request for Quit {
    type Output = ();
    const KIND: CommandKind = CommandKind::Quit;

    fn encode(&self, dst: &mut WriteBuf) {
        encode_numbers(dst, "quit", []);
    }

    /// `quit` completes locally with [`Response::Closing`].
    fn from_response(response: Response) -> Result<(), Error> {
        match response {
            Response::Closing => Ok(()),
            other => Err(other.into_error(Self::KIND)),
        }
    }
}
