//! Drives the sans-IO core over a plain `std::net::TcpStream`: the whole
//! job of an adapter, in one function.
//!
//! ```sh
//! cargo run -p beanstalk-proto --example embed_std -- 127.0.0.1:11300
//! ```

use std::error::Error;
use std::io::{Read, Write};
use std::net::TcpStream;

use beanstalk_proto::{Connection, PutOptions, Request, WriteBuf, cmd};
use bytes::{Buf, BytesMut};

/// Puts a job and reserves and deletes it, pipelining where it can.
pub(crate) fn run(address: &str) -> Result<(), Box<dyn Error>> {
    let mut socket = TcpStream::connect(address)?;
    let mut conn = Connection::default();
    let mut out = WriteBuf::new();
    let mut input = BytesMut::with_capacity(4096);

    // 1. Encode: four commands, one write.
    conn.send(&cmd::Use::new("embedded")?, &mut out)?;
    conn.send(&cmd::Watch::new("embedded")?, &mut out)?;
    let put = conn.send(&cmd::Put::new("hello", PutOptions::default())?, &mut out)?;
    let reserve = conn.send(&cmd::ReserveWithTimeout::new(5)?, &mut out)?;
    // 2. Write.
    write_out(&mut socket, &mut out)?;
    // 3. Read until every reply is in; each comes with its command's token.
    let mut job = None;
    while conn.in_flight() > 0 {
        match conn.poll_response(&mut input)? {
            Some((token, reply)) if token == put => {
                println!("put -> {:?}", cmd::Put::from_response(reply)?)
            }
            Some((token, reply)) if token == reserve => {
                job = Some(cmd::ReserveWithTimeout::from_response(reply)?)
            }
            Some((_, reply)) => println!("-> {reply:?}"),
            None => read_more(&mut socket, &mut conn, &mut input)?,
        }
    }
    let job = job.ok_or("no job reserved")?;
    println!("reserved job {} ({:?})", job.id, job.body);

    // One more round trip: delete it.
    conn.send(&cmd::Delete::new(job.id), &mut out)?;
    write_out(&mut socket, &mut out)?;
    loop {
        if let Some((_, reply)) = conn.poll_response(&mut input)? {
            cmd::Delete::from_response(reply)?;
            println!("deleted job {}", job.id);
            return Ok(());
        }
        read_more(&mut socket, &mut conn, &mut input)?;
    }
}

/// Writes everything `out` holds. It may be several chunks (a large body
/// is queued by reference, not copied), so write until none is left.
fn write_out(socket: &mut TcpStream, out: &mut WriteBuf) -> Result<(), Box<dyn Error>> {
    while out.has_remaining() {
        let written = socket.write(out.chunk())?;
        if written == 0 {
            return Err("the socket took nothing".into());
        }
        out.advance(written);
    }
    Ok(())
}

/// Reads what the socket has; the end of stream is reported to the core,
/// which turns a close with replies outstanding into an error.
fn read_more(
    socket: &mut TcpStream,
    conn: &mut Connection,
    input: &mut BytesMut,
) -> Result<(), Box<dyn Error>> {
    let mut chunk = [0u8; 4096];
    let read = socket.read(&mut chunk)?;
    if read == 0 {
        conn.handle_eof(input)?;
        return Err("server closed the connection".into());
    }
    input.extend_from_slice(&chunk[..read]);
    Ok(())
}

#[allow(dead_code)] // the conformance tests call `run` without `main`
fn main() -> Result<(), Box<dyn Error>> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:11300".to_owned());
    run(&address)
}
