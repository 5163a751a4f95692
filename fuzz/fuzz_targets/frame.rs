//! `frame`: arbitrary bytes into the stateless reply parser.
//!
//! Never panics; a complete frame lies inside the input, re-parses to
//! itself from exactly its own bytes, and has a well-formed line and body;
//! no prefix of the input parses to anything the whole input contradicts
//! (a prefix of a complete frame is `Partial`, never an error); tighter
//! limits change only the verdict on bodies over the cap.
#![no_main]

use beanstalk_proto::ProtocolError;
use beanstalk_proto::frame::{Head, Limits, MAX_REPLY_LINE, Status, find_line_end, parse_frame};
use libfuzzer_sys::fuzz_target;

/// A job-body cap small enough for the fuzzer to cross.
const SMALL_JOB_CAP: usize = 16;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let whole = parse_frame(data, &limits);
    match whole {
        Ok(Status::Complete(frame)) => {
            assert!(frame.len <= data.len());
            assert!(2 <= frame.line_len && frame.line_len <= frame.len);
            assert!(frame.line_len <= MAX_REPLY_LINE);
            let line = &data[..frame.line_len - 2];
            assert_eq!(&data[frame.line_len - 2..frame.line_len], b"\r\n");
            assert!(!line.contains(&b'\r') && !line.contains(&b'\n'));
            assert!(line.starts_with(frame.head.word().as_str().as_bytes()));
            match frame.head {
                Head::Reserved { len, .. } | Head::Found { len, .. } => {
                    assert!(len <= limits.max_job_body)
                }
                Head::Ok { len } => assert!(len <= limits.max_yaml_body),
                _ => {}
            }
            match frame.head.body_len() {
                None => assert_eq!(frame.len, frame.line_len),
                Some(len) => {
                    assert_eq!(frame.len, frame.line_len + len + 2);
                    assert_eq!(
                        frame.body(data),
                        Some(&data[frame.line_len..frame.line_len + len])
                    );
                    assert_eq!(&data[frame.len - 2..frame.len], b"\r\n");
                }
            }
            assert_eq!(
                parse_frame(&data[..frame.len], &limits),
                whole,
                "re-parse of the frame's own bytes"
            );
        }
        // Without a line end the parser buffers less than one reply line.
        Ok(Status::Partial) => {
            if find_line_end(data) == Ok(None) {
                assert!(data.len() < MAX_REPLY_LINE);
            }
        }
        Err(_) => {}
    }

    // Prefixes: every length through the reply line (or the first 64 bytes),
    // then a spread, plus the frame's last bytes.
    let dense = match whole {
        Ok(Status::Complete(frame)) => frame.line_len + 1,
        _ => 64,
    };
    let mut lengths: Vec<usize> = (0..=dense).collect();
    lengths.extend((dense..data.len()).step_by((data.len() / 16).max(1)));
    if let Ok(Status::Complete(frame)) = whole {
        lengths.extend([frame.len.saturating_sub(2), frame.len.saturating_sub(1)]);
    }
    for len in lengths.into_iter().filter(|&len| len < data.len()) {
        let prefix = parse_frame(&data[..len], &limits);
        match (whole, prefix) {
            (_, Ok(Status::Complete(_))) => assert_eq!(prefix, whole, "prefix of {len} bytes"),
            (Ok(Status::Complete(frame)), Ok(Status::Partial)) => assert!(len < frame.len),
            (Ok(Status::Complete(_) | Status::Partial), Err(error)) => {
                panic!("prefix of {len} bytes fails with {error:?}, the whole input does not")
            }
            _ => {}
        }
    }

    // A smaller job-body cap only turns bodies over the cap into BodyTooLarge.
    let small = parse_frame(data, &Limits::with_max_job_body(SMALL_JOB_CAP));
    if small != whole {
        assert!(
            matches!(small, Err(ProtocolError::BodyTooLarge { len, max: SMALL_JOB_CAP }) if len > SMALL_JOB_CAP as u64),
            "small cap: {small:?}, default: {whole:?}"
        );
    }

    // Caps at their maximum ("no limit") must not make the parser panic.
    let mut unlimited = Limits::with_max_job_body(usize::MAX);
    unlimited.max_yaml_body = usize::MAX;
    let _ = parse_frame(data, &unlimited);
});
