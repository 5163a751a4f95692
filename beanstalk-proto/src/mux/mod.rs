//! One connection shared by many callers: the bookkeeping behind every
//! adapter's shared handle, without the I/O.
//!
//! Callers [`Mux::enqueue`] commands, each with a waiter of the adapter's
//! choosing (a [`ReplyTicket`] from the handle's reply slot, say). A driver writes what
//! [`Mux::take_output`] hands it, feeds what it reads to
//! [`Mux::dispatch`], and each reply reaches its waiter in order through a
//! callback, so the core never depends on a channel type.
//!
//! The tube in use belongs to each caller's handle, not to the connection:
//! before a command that acts on the tube in use, `enqueue` inserts a `use`
//! when the connection will be on another tube, in the same pipeline, so one
//! task's job never lands in a tube another task chose. A caller's own
//! `use` moves its handle only once the server confirms it
//! ([`follow_use`]): a refused one (`OUT_OF_MEMORY`) leaves the handle,
//! and its later jobs, where they were.
//!
//! ```
//! use beanstalk_proto::{mux::Mux, cmd::Put, Config, PutOptions, Response, Tube, WriteBuf};
//! use bytes::{Buf, BytesMut};
//!
//! let mut mux: Mux<&str> = Mux::new(Config::default());
//! let tube_a = Tube::new("a")?;
//! mux.enqueue(&tube_a, &Put::new("x", PutOptions::default())?, "first caller")?;
//! let mut out = WriteBuf::new();
//! mux.take_output(&mut out);
//! assert_eq!(out.chunk(), b"use a\r\nput 1024 0 60 1\r\nx\r\n");
//!
//! let mut input = BytesMut::from(&b"USING a\r\nINSERTED 7\r\n"[..]);
//! let mut delivered = Vec::new();
//! mux.dispatch(&mut input, |waiter, reply| delivered.push((waiter, reply.unwrap())))?;
//! assert_eq!(delivered, [("first caller", Response::Inserted(7))]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#[cfg(feature = "std")]
pub mod reply_slot;

use alloc::collections::VecDeque;

use bytes::{Buf, BytesMut};

use crate::cmd::{self, CommandKind, Request};
use crate::config::Config;
use crate::connection::{Connection, State};
use crate::error::{CommandError, Error, ProtocolError};
use crate::frame::ReplyWord;
use crate::response::Response;
use crate::tube::Tube;
use crate::write_buf::WriteBuf;

use crate::write_pacing::WritePacing;
#[cfg(feature = "std")]
pub use reply_slot::{ReplySlot, ReplyTicket, ReplyWait};

/// Moves a handle to the tube its `use` was answered with: call it with
/// every reply the handle's call gets from [`Mux::dispatch`]. Any other
/// reply (an error, a refused `use`, another command's) leaves the
/// handle's tube as it was.
///
/// ```
/// use beanstalk_proto::{mux::follow_use, Error, ReplyWord, Response, Tube};
///
/// let mut handle = Tube::DEFAULT;
/// let refused: Result<Response, Error> = Ok(Response::Word(ReplyWord::OutOfMemory));
/// follow_use(&mut handle, &refused);
/// assert_eq!(handle, Tube::DEFAULT);
///
/// follow_use(&mut handle, &Ok(Response::Using(Tube::new("emails")?)));
/// assert_eq!(handle.as_str(), "emails");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[inline]
pub fn follow_use(handle_tube: &mut Tube, reply: &Result<Response, Error>) {
    if let Ok(Response::Using(tube)) = reply {
        handle_tube.clone_from(tube);
    }
}

/// One entry per command in flight, in the connection's order.
#[derive(Debug)]
enum Slot<W> {
    Caller(W),
    /// A `use` inserted for a handle's tube; its reply is checked, not
    /// delivered.
    TubeSwitch,
}

/// The shared state of a multiplexed connection.
#[derive(Debug)]
pub struct Mux<W> {
    conn: Connection,
    wbuf: WriteBuf,
    slots: VecDeque<Slot<W>>,
    /// The tube the connection uses once everything sent so far is done;
    /// `None` while a caller's own `use` is unanswered, since the server
    /// may refuse it.
    tube_sent: Option<Tube>,
    stopping: bool,
    pacing: WritePacing,
}

impl<W> Mux<W> {
    /// A new connection's state.
    pub fn new(config: Config) -> Self {
        Self {
            conn: Connection::new(config),
            wbuf: WriteBuf::new(),
            slots: VecDeque::new(),
            tube_sent: Some(Tube::DEFAULT),
            stopping: false,
            pacing: WritePacing::default(),
        }
    }

    /// The protocol state.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Whether the driver should stop: the connection failed or closed.
    pub fn is_stopping(&self) -> bool {
        self.stopping
    }

    /// Whether the connection can still take commands.
    pub fn is_open(&self) -> bool {
        !self.stopping && self.conn.is_open()
    }

    /// Whether no caller waits for a reply.
    pub fn is_idle(&self) -> bool {
        self.slots.is_empty()
    }

    /// How many encoded bytes wait to be taken by the driver.
    pub fn output_len(&self) -> usize {
        self.wbuf.remaining()
    }

    /// Whether encoded bytes wait to be taken by the driver.
    pub fn has_output(&self) -> bool {
        !self.wbuf.is_empty()
    }

    /// Encodes `request` for a handle whose tube in use is `handle_tube`,
    /// preceded by a `use` when the connection will be on another tube,
    /// and registers `waiter` for its reply. The handle's own `use` changes
    /// its tube once answered: pass the reply to [`follow_use`].
    ///
    /// Refuses commands that could hold every other caller's replies back
    /// ([`CommandError::WouldBlockShared`]). On error nothing is sent and
    /// `waiter` is dropped.
    pub fn enqueue<R: Request>(
        &mut self,
        handle_tube: &Tube,
        request: &R,
        waiter: W,
    ) -> Result<(), Error> {
        if request.reply_timeout().may_wait() {
            return Err(CommandError::WouldBlockShared.into());
        }
        if self.stopping {
            return Err(self.conn.closed_error().into());
        }
        if R::KIND.depends_on_tube_in_use() && self.tube_sent.as_ref() != Some(handle_tube) {
            // The command is checked first, so a refused one sends no
            // `use` either.
            request.check(self.conn.config())?;
            self.conn
                .send(&cmd::Use::new(handle_tube)?, &mut self.wbuf)?;
            self.slots.push_back(Slot::TubeSwitch);
            self.tube_sent = Some(handle_tube.clone());
        }
        self.conn.send(request, &mut self.wbuf)?;
        if R::KIND == CommandKind::Use {
            // Refused, it leaves the connection where it was; until its
            // reply, the next command on a tube says `use` again.
            self.tube_sent = None;
        }
        self.slots.push_back(Slot::Caller(waiter));
        Ok(())
    }

    /// Whether queued commands are due to be written now: false when none
    /// are queued, and while they are held for the next replies (see
    /// [`Mux::take_output`]). A caller that just queued a command wakes the
    /// driver only when this is true: held output is taken after the next
    /// [`Mux::dispatch`] anyway, and a driver woken for it would find
    /// nothing to write.
    ///
    /// ```
    /// use beanstalk_proto::{mux::Mux, cmd::Put, Config, PutOptions, Tube, WriteBuf};
    /// use bytes::Buf;
    ///
    /// let mut mux: Mux<u32> = Mux::new(Config::default());
    /// let tube = Tube::DEFAULT;
    /// let put = Put::new("x", PutOptions::default())?;
    /// assert!(!mux.output_due(), "nothing queued");
    /// for caller in 0..16 {
    ///     mux.enqueue(&tube, &put, caller)?;
    /// }
    /// assert!(mux.output_due(), "nothing written yet, so nothing to wait for");
    /// let mut out = WriteBuf::new();
    /// mux.take_output(&mut out);
    /// out.advance(out.remaining());
    ///
    /// mux.enqueue(&tube, &put, 16)?;
    /// assert!(!mux.output_due(), "held while 16 are unanswered: no need to wake the driver");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn output_due(&mut self) -> bool {
        !self.wbuf.is_empty() && !self.pacing.holds(self.wbuf.remaining())
    }

    /// Moves every encoded byte into `out`, so the driver can write without
    /// holding the lock that guards the mux. Whatever `out` still holds
    /// (a non-blocking write took only part of it) stays first: the new
    /// bytes go after it, in the order the replies will be matched in.
    ///
    /// While 16 or more commands already taken are unanswered, newer ones
    /// stay here (up to 64 KiB) until replies come: the server is busy with
    /// the others anyway, and they then leave together, in one write
    /// instead of a few commands per write. [`Mux::dispatch`] ends the hold
    /// by handing replies out, so a driver takes output again after each
    /// dispatch. A hold that let the server run out of work is not tried
    /// again for a while (client and server then share one CPU).
    ///
    /// ```
    /// use beanstalk_proto::{mux::Mux, cmd::Put, Config, PutOptions, Tube, WriteBuf};
    /// use bytes::{Buf, BytesMut};
    ///
    /// let mut mux: Mux<u32> = Mux::new(Config::default());
    /// let tube = Tube::DEFAULT;
    /// let put = Put::new("x", PutOptions::default())?;
    /// for caller in 0..16 {
    ///     mux.enqueue(&tube, &put, caller)?;
    /// }
    /// let mut out = WriteBuf::new();
    /// mux.take_output(&mut out);
    /// out.advance(out.remaining()); // all 16 written
    ///
    /// mux.enqueue(&tube, &put, 16)?;
    /// mux.take_output(&mut out);
    /// assert!(!out.has_remaining() && mux.has_output(), "held: 16 are unanswered");
    ///
    /// let mut delivered = 0;
    /// mux.dispatch(&mut BytesMut::from(&b"INSERTED 1\r\n"[..]), |_, _| delivered += 1)?;
    /// mux.take_output(&mut out);
    /// assert_eq!(out.chunk(), b"put 1024 0 60 1\r\nx\r\n");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn take_output(&mut self, out: &mut WriteBuf) {
        if !self.output_due() {
            return;
        }
        self.pacing.taken(self.slots.len());
        if out.is_empty() {
            // The usual case: a swap, which also hands the mux an empty
            // buffer that keeps its capacity.
            core::mem::swap(&mut self.wbuf, out);
        } else {
            // Swapped, the unwritten rest of the last output would come
            // back here and leave after the new commands: those would land
            // inside a command cut mid-line, and replies would be matched
            // to the wrong callers.
            out.append(&mut self.wbuf);
        }
    }

    /// Hands every complete reply in `rbuf` to its waiter. Call it after
    /// each read and after taking output (`quit` completes without bytes
    /// from the server). On a protocol error every waiter gets it, the mux
    /// stops, and the error is returned.
    pub fn dispatch(
        &mut self,
        rbuf: &mut BytesMut,
        mut deliver: impl FnMut(W, Result<Response, Error>),
    ) -> Result<(), ProtocolError> {
        loop {
            let reply = match self.conn.poll_response(rbuf) {
                Ok(Some((_, reply))) => reply,
                Ok(None) => {
                    self.pacing.replies_handled();
                    return Ok(());
                }
                Err(cause) => {
                    self.fail(cause, None, deliver);
                    return Err(cause);
                }
            };
            self.pacing.answered();
            match self.slots.pop_front() {
                Some(Slot::Caller(waiter)) => {
                    // A caller's `use` confirmed with nothing sent after
                    // it: the connection is known to be on its tube again.
                    if let Response::Using(tube) = &reply {
                        if self.slots.is_empty() {
                            self.tube_sent = Some(tube.clone());
                        }
                    }
                    deliver(waiter, Ok(reply));
                }
                Some(Slot::TubeSwitch) if matches!(reply, Response::Using(_)) => {}
                // The `use` before a command failed (out of memory): what
                // follows may act on the wrong tube, so stop here.
                Some(Slot::TubeSwitch) => {
                    let cause = ProtocolError::UnexpectedReply {
                        command: CommandKind::Use.name(),
                        reply: reply.word().unwrap_or(ReplyWord::Using),
                    };
                    self.fail(cause, None, deliver);
                    return Err(cause);
                }
                None => {
                    let cause =
                        ProtocolError::Unsolicited(reply.word().unwrap_or(ReplyWord::Using));
                    self.fail(cause, None, deliver);
                    return Err(cause);
                }
            }
        }
    }

    /// The connection failed or is given up: the oldest waiting caller gets
    /// `first` (the I/O error or timeout that broke it) when given, every
    /// other one the recorded cause, and the mux stops.
    pub fn fail(
        &mut self,
        cause: ProtocolError,
        first: Option<Error>,
        mut deliver: impl FnMut(W, Result<Response, Error>),
    ) {
        self.conn.abandon();
        let cause = match self.conn.state() {
            State::Broken(recorded) => recorded,
            _ => cause,
        };
        self.stopping = true;
        self.wbuf.clear();
        self.pacing.reset();
        let mut first = first;
        for slot in self.slots.drain(..) {
            if let Slot::Caller(waiter) = slot {
                deliver(waiter, Err(first.take().unwrap_or(Error::Protocol(cause))));
            }
        }
    }

    /// The server closed the stream: a clean close after `quit`, a broken
    /// connection otherwise. Either way every waiter is answered and the mux
    /// stops.
    pub fn end_of_stream(
        &mut self,
        unread: &[u8],
        mut deliver: impl FnMut(W, Result<Response, Error>),
    ) {
        match self.conn.handle_eof(unread) {
            Ok(()) => {
                self.stopping = true;
                self.pacing.reset();
                for slot in self.slots.drain(..) {
                    if let Slot::Caller(waiter) = slot {
                        deliver(waiter, Err(CommandError::Closed.into()));
                    }
                }
            }
            Err(cause) => self.fail(cause, None, deliver),
        }
    }
}
