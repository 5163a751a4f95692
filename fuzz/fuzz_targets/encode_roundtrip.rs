//! `encode_roundtrip`: arbitrary constructor arguments for all 25 commands.
//!
//! Each constructor must fail exactly when the oracle says so, with the
//! oracle's error; what `Connection::send` accepts must come out of the
//! `WriteBuf` byte for byte as the oracle writes it, and as a well-formed
//! command stream (`check_wire`), whether drained by `chunk`/`advance` in
//! arbitrary write sizes or gathered by `chunks_vectored`.
#![no_main]

use std::io::IoSlice;

use arbitrary::Arbitrary;
use beanstalk_proto::cmd::{CommandKind, Request};
use beanstalk_proto::{CommandError, Config, Connection, WriteBuf};
use beanstalk_proto_fuzz::{Cmd, Expect, Visit, check_wire};
use bytes::Buf;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum ZeroCopy {
    Default,
    Min(u16),
    Never,
}

#[derive(Arbitrary, Debug)]
struct Input {
    max_job_size: Option<u32>,
    zero_copy: ZeroCopy,
    commands: Vec<Cmd>,
    /// Sizes of the partial writes that drain the buffer (0 counts as 1).
    writes: Vec<u16>,
}

struct Encoder {
    conn: Connection,
    out: WriteBuf,
    limit: u32,
    expected: Vec<u8>,
    sent: u64,
    quit: bool,
}

impl Visit for Encoder {
    fn visit<R: Request>(&mut self, built: Result<R, CommandError>, expect: Expect) {
        let request = match built {
            Ok(request) => {
                assert_eq!(expect.error, None, "constructor accepted a bad argument");
                request
            }
            Err(error) => {
                assert_eq!(Some(error), expect.error, "constructor error");
                return;
            }
        };
        let (before, in_flight) = (self.out.remaining(), self.conn.in_flight());
        match self.conn.send(&request, &mut self.out) {
            Ok(token) => {
                assert!(!self.quit, "sent after quit");
                assert_eq!(token.get(), self.sent, "tokens count the commands sent");
                assert!(expect.put_len.is_none_or(|len| len <= self.limit as usize));
                assert_eq!(self.conn.in_flight(), in_flight + 1);
                assert_eq!(
                    self.out.remaining() - before,
                    expect.wire.len(),
                    "bytes written"
                );
                self.expected.extend_from_slice(&expect.wire);
                self.sent += 1;
                self.quit = R::KIND == CommandKind::Quit;
            }
            Err(error) => {
                assert_eq!(
                    self.out.remaining(),
                    before,
                    "a refused command wrote bytes"
                );
                assert_eq!(self.conn.in_flight(), in_flight);
                let want = match expect.put_len {
                    _ if self.quit => CommandError::Closed,
                    Some(len) if len > self.limit as usize => CommandError::JobTooBig {
                        len,
                        max: self.limit,
                    },
                    _ => panic!("send refused a valid command: {error:?}"),
                };
                assert_eq!(error, want);
            }
        }
    }
}

fuzz_target!(|input: Input| {
    let mut config = Config::default();
    if let Some(max) = input.max_job_size {
        config = config.max_job_size(max);
    }
    let out = match input.zero_copy {
        ZeroCopy::Default => WriteBuf::new(),
        ZeroCopy::Min(min) => WriteBuf::with_zero_copy_min(usize::from(min)),
        ZeroCopy::Never => WriteBuf::with_zero_copy_min(usize::MAX),
    };
    let mut encoder = Encoder {
        conn: Connection::new(config),
        out,
        limit: config.job_size_limit(),
        expected: Vec::new(),
        sent: 0,
        quit: false,
    };
    assert!(encoder.limit <= 1 << 30);
    for command in input.commands.iter().take(64) {
        command.apply(&mut encoder);
    }
    let Encoder {
        mut out,
        expected,
        sent,
        ..
    } = encoder;
    assert_eq!(out.remaining(), expected.len());

    // Vectored view: the non-empty chunks, in order, make up the whole stream.
    let mut slices = [IoSlice::new(&[]); 256];
    let filled = out.chunks_vectored(&mut slices);
    let gathered: Vec<u8> = slices[..filled]
        .iter()
        .flat_map(|s| s.iter().copied())
        .collect();
    assert!(
        slices[..filled].iter().all(|s| !s.is_empty()),
        "chunks_vectored gave an empty slice"
    );
    if filled < slices.len() {
        assert_eq!(gathered, expected, "chunks_vectored");
    }

    // What a `write` loop sees: `chunk` is never empty while bytes remain.
    let mut drained = Vec::with_capacity(expected.len());
    let mut writes = input.writes.iter().map(|&w| usize::from(w.max(1))).cycle();
    while out.has_remaining() {
        let chunk = out.chunk();
        assert!(
            !chunk.is_empty(),
            "chunk() is empty with {} bytes remaining",
            out.remaining()
        );
        let n = chunk.len().min(writes.next().unwrap_or(usize::MAX));
        drained.extend_from_slice(&chunk[..n]);
        out.advance(n);
    }
    assert!(out.is_empty());
    assert_eq!(drained, expected, "drained bytes");
    assert_eq!(check_wire(&drained) as u64, sent);
});
