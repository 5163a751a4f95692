//! The baseline: a minimal beanstalkd client written with `std` only.
//!
//! It knows just enough protocol for the three workloads: it encodes each
//! command once up front, checks each reply's first word and counts. Its
//! pipelined mode batches writes with at most [`MAX_UNANSWERED`] bytes of
//! commands unanswered, writing once half of that is free (W1, W3), or
//! keeps a sliding window of reservations (W2): every `RESERVED` read is
//! answered with a `delete` and a new `reserve-with-timeout 0` in the next
//! write. One thread: with the client pinned to one core, a separate reader
//! thread measured no faster and cost more CPU. The runner also uses it to
//! preload, check and drain tubes.

use std::collections::BTreeMap;
use std::io::{self, IoSlice, Read, Write};
use std::net::{SocketAddr, TcpStream};

/// The most command bytes the pipelined raw client keeps unanswered.
pub(crate) const MAX_UNANSWERED: usize = 256 * 1024;

/// Bodies at least this long are written straight from the encoded command
/// (vectored) rather than copied into the batch buffer.
const VECTORED_MIN: usize = 16 * 1024;

/// A connection with its read buffer.
pub(crate) struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

fn protocol(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

/// `put 1024 0 60 <len>\r\n<body>\r\n`: the bytes the adapters send for a
/// put with default options.
pub(crate) fn put_command(body: &[u8]) -> Vec<u8> {
    let mut cmd = format!("put 1024 0 60 {}\r\n", body.len()).into_bytes();
    cmd.extend_from_slice(body);
    cmd.extend_from_slice(b"\r\n");
    cmd
}

fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &b| {
        let d = b.checked_sub(b'0').filter(|d| *d <= 9)?;
        acc.checked_mul(10)?.checked_add(u64::from(d))
    })
}

/// `RESERVED <id> <len>` → (id, len).
fn parse_reserved(line: &[u8]) -> Option<(u64, usize)> {
    let args = line.strip_prefix(b"RESERVED ")?;
    let space = args.iter().position(|&b| b == b' ')?;
    let id = parse_u64(&args[..space])?;
    let len = usize::try_from(parse_u64(&args[space + 1..])?).ok()?;
    Some((id, len))
}

impl Conn {
    pub(crate) fn connect(addr: SocketAddr) -> io::Result<Self> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            buf: vec![0; 256 * 1024],
            start: 0,
            end: 0,
        })
    }

    /// One `read` into the buffer.
    fn fill(&mut self) -> io::Result<()> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if self.end == self.buf.len() {
                self.buf.resize(self.buf.len() * 2, 0);
            }
        }
        let n = self.stream.read(&mut self.buf[self.end..])?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.end += n;
        Ok(())
    }

    /// The length (CRLF included) of the line at the read position, if it
    /// has arrived whole.
    fn line_len(&self) -> Option<usize> {
        self.buf[self.start..self.end]
            .iter()
            .position(|&b| b == b'\n')
            .map(|lf| lf + 1)
    }

    /// The line at the read position (without CRLF), read to the end.
    fn line(&mut self) -> io::Result<&[u8]> {
        loop {
            if let Some(len) = self.line_len() {
                let line = self.start..self.start + len - 2;
                self.start += len;
                return Ok(&self.buf[line]);
            }
            self.fill()?;
        }
    }

    /// Skips `n` bytes (a body and its CRLF), reading as needed.
    fn skip(&mut self, mut n: usize) -> io::Result<()> {
        loop {
            let here = n.min(self.end - self.start);
            self.start += here;
            n -= here;
            if n == 0 {
                return Ok(());
            }
            self.fill()?;
        }
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Writes `copies` copies of `cmd` without copying them.
    fn write_copies(&mut self, cmd: &[u8], copies: usize) -> io::Result<()> {
        let mut slices = vec![IoSlice::new(cmd); copies];
        let mut slices = &mut slices[..];
        while !slices.is_empty() {
            let n = self.stream.write_vectored(slices)?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            IoSlice::advance_slices(&mut slices, n);
        }
        Ok(())
    }

    /// Sends one command line and expects a reply starting with `expect`.
    pub(crate) fn command(&mut self, cmd: &str, expect: &str) -> io::Result<()> {
        self.write_all(cmd.as_bytes())?;
        let line = self.line()?;
        if line.starts_with(expect.as_bytes()) {
            Ok(())
        } else {
            Err(protocol(format!(
                "{} answered {:?}",
                cmd.trim_end(),
                String::from_utf8_lossy(line)
            )))
        }
    }

    /// Uses and watches `tube` only.
    pub(crate) fn select_tube(&mut self, tube: &str) -> io::Result<()> {
        self.command(&format!("use {tube}\r\n"), "USING ")?;
        self.command(&format!("watch {tube}\r\n"), "WATCHING ")?;
        self.command("ignore default\r\n", "WATCHING ")
    }

    /// `stats-tube` as key/value pairs.
    pub(crate) fn stats_tube(&mut self, tube: &str) -> io::Result<BTreeMap<String, String>> {
        self.write_all(format!("stats-tube {tube}\r\n").as_bytes())?;
        let line = self.line()?;
        let len = line
            .strip_prefix(b"OK ")
            .and_then(parse_u64)
            .ok_or_else(|| protocol(format!("stats-tube: {}", String::from_utf8_lossy(line))))?;
        let len = usize::try_from(len).map_err(|_| protocol("stats-tube: huge body"))?;
        while self.end - self.start < len + 2 {
            self.fill()?;
        }
        let body = String::from_utf8_lossy(&self.buf[self.start..self.start + len]).into_owned();
        self.start += len + 2;
        Ok(body
            .lines()
            .filter_map(|line| line.split_once(": "))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect())
    }

    /// Request-response puts: one command in flight.
    pub(crate) fn put_one_by_one(&mut self, body: &[u8], jobs: u64) -> io::Result<()> {
        let cmd = put_command(body);
        for _ in 0..jobs {
            self.write_all(&cmd)?;
            let line = self.line()?;
            if !line.starts_with(b"INSERTED ") {
                return Err(protocol(format!("put: {}", String::from_utf8_lossy(line))));
            }
        }
        Ok(())
    }

    /// Request-response reserve+delete of `jobs` ready jobs.
    pub(crate) fn reserve_delete_one_by_one(&mut self, jobs: u64) -> io::Result<()> {
        let mut delete = Vec::with_capacity(32);
        for _ in 0..jobs {
            self.write_all(b"reserve\r\n")?;
            let line = self.line()?;
            let (id, len) = parse_reserved(line)
                .ok_or_else(|| protocol(format!("reserve: {}", String::from_utf8_lossy(line))))?;
            self.skip(len + 2)?;
            delete.clear();
            delete.extend_from_slice(b"delete ");
            push_u64(&mut delete, id);
            delete.extend_from_slice(b"\r\n");
            self.write_all(&delete)?;
            let line = self.line()?;
            if line != b"DELETED" {
                return Err(protocol(format!(
                    "delete: {}",
                    String::from_utf8_lossy(line)
                )));
            }
        }
        Ok(())
    }

    /// Pipelined puts: batched writes, at most [`MAX_UNANSWERED`] bytes of
    /// commands unanswered (but always at least one command).
    pub(crate) fn put_pipelined(&mut self, body: &[u8], jobs: u64) -> io::Result<()> {
        let cmd = put_command(body);
        let max_in_flight = (MAX_UNANSWERED / cmd.len()).max(1) as u64;
        let mut out = Vec::new();
        let (mut sent, mut answered) = (0u64, 0u64);
        // Write in large batches, once half the window is free: topping up
        // one command per reply would make every write (and the server's
        // every reply) a wake-up of its own.
        let low_water = (max_in_flight / 2).max(1);
        while answered < jobs {
            let batch = (max_in_flight - (sent - answered)).min(jobs - sent);
            let worth_writing = batch >= low_water || sent + batch == jobs;
            if batch > 0 && worth_writing {
                if cmd.len() >= VECTORED_MIN {
                    self.write_copies(&cmd, batch as usize)?;
                } else {
                    out.clear();
                    for _ in 0..batch {
                        out.extend_from_slice(&cmd);
                    }
                    self.write_all(&out)?;
                }
                sent += batch;
            }
            self.fill()?;
            while let Some(len) = self.line_len() {
                let line = &self.buf[self.start..self.start + len - 2];
                if !line.starts_with(b"INSERTED ") {
                    return Err(protocol(format!("put: {}", String::from_utf8_lossy(line))));
                }
                self.start += len;
                answered += 1;
            }
        }
        Ok(())
    }

    /// Pipelined reserve+delete of `jobs` ready jobs, with at most `window`
    /// jobs reserved or asked for at once: each `RESERVED` is answered with
    /// `delete` and a new reserve, written together after each read.
    pub(crate) fn reserve_delete_pipelined(&mut self, jobs: u64, window: usize) -> io::Result<()> {
        const RESERVE: &[u8] = b"reserve-with-timeout 0\r\n";
        let mut out = Vec::new();
        let first = (window.max(1) as u64).min(jobs);
        for _ in 0..first {
            out.extend_from_slice(RESERVE);
        }
        let mut reserves_sent = first;
        let mut deleted = 0u64;
        while deleted < jobs {
            if !out.is_empty() {
                self.write_all(&out)?;
                out.clear();
            }
            self.fill()?;
            while let Some(len) = self.line_len() {
                let line = &self.buf[self.start..self.start + len - 2];
                if line == b"DELETED" {
                    self.start += len;
                    deleted += 1;
                    continue;
                }
                let (id, body) = parse_reserved(line)
                    .ok_or_else(|| protocol(format!("reply: {}", String::from_utf8_lossy(line))))?;
                if self.end - self.start < len + body + 2 {
                    break; // the body is not all here yet
                }
                self.start += len + body + 2;
                out.extend_from_slice(b"delete ");
                push_u64(&mut out, id);
                out.extend_from_slice(b"\r\n");
                if reserves_sent < jobs {
                    out.extend_from_slice(RESERVE);
                    reserves_sent += 1;
                }
            }
        }
        Ok(())
    }
}
