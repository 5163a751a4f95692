//! A test double: runs commands against recorded server bytes.
//!
//! [`Replay`] implements both [`Execute`] and [`AsyncExecute`], so it has
//! all 25 commands. Each command really goes through a [`Connection`]: it
//! is validated and encoded (what would have been written is kept, see
//! [`Replay::sent`]), and its reply is decoded from the bytes given at
//! construction. Use it to unit-test code written against [`Commands`] or
//! [`AsyncCommands`](crate::AsyncCommands) without a server.
//!
//! ```
//! use beanstalk_proto::{Commands, Error, PutOptions, replay::Replay};
//!
//! let mut client = Replay::new(b"USING emails\r\nINSERTED 7\r\nNOT_FOUND\r\n");
//! client.use_tube("emails")?;
//! assert_eq!(client.put("hi", PutOptions::default())?.id, 7);
//! assert!(matches!(client.delete(8), Err(Error::NotFound)));
//! assert_eq!(client.sent(), b"use emails\r\nput 1024 0 60 2\r\nhi\r\ndelete 8\r\n");
//! # Ok::<(), Error>(())
//! ```
//!
//! [`Commands`]: crate::Commands

use core::future::{Future, ready};

use alloc::vec::Vec;
use bytes::{Buf, BytesMut};

use crate::api::{AsyncExecute, Execute};
use crate::cmd::Request;
use crate::config::Config;
use crate::connection::Connection;
use crate::error::Error;
use crate::write_buf::WriteBuf;

/// Commands answered from recorded bytes; see the [module docs](self).
#[derive(Debug)]
pub struct Replay {
    conn: Connection,
    out: WriteBuf,
    input: BytesMut,
    sent: Vec<u8>,
}

impl Replay {
    /// A client whose server will have sent exactly `server_bytes`.
    pub fn new(server_bytes: &[u8]) -> Self {
        Self::with_config(server_bytes, Config::default())
    }

    /// The same, with the given limits.
    pub fn with_config(server_bytes: &[u8], config: Config) -> Self {
        Self {
            conn: Connection::new(config),
            out: WriteBuf::new(),
            input: BytesMut::from(server_bytes),
            sent: Vec::new(),
        }
    }

    /// Everything the commands so far would have written.
    pub fn sent(&self) -> &[u8] {
        &self.sent
    }

    /// The connection's state (session, broken or not).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    fn run<R: Request>(&mut self, request: &R) -> Result<R::Output, Error> {
        let token = self.conn.send(request, &mut self.out)?;
        while self.out.has_remaining() {
            let chunk = self.out.chunk();
            self.sent.extend_from_slice(chunk);
            let written = chunk.len();
            self.out.advance(written);
        }
        loop {
            match self.conn.poll_response(&mut self.input)? {
                Some((answered, response)) if answered == token => {
                    return R::from_response(response);
                }
                // A reply to an earlier command whose caller gave up on it.
                Some(_) => {}
                // The recording ends here: the server "closed" the connection.
                None => {
                    self.conn.handle_eof(&self.input)?;
                    return Err(self.conn.closed_error().into());
                }
            }
        }
    }
}

impl Execute for Replay {
    fn execute<R: Request>(&mut self, request: R) -> Result<R::Output, Error> {
        self.run(&request)
    }
}

impl AsyncExecute for Replay {
    fn execute<R>(&mut self, request: R) -> impl Future<Output = Result<R::Output, Error>> + Send
    where
        R: Request + Send,
        R::Output: Send,
    {
        ready(self.run(&request))
    }
}
