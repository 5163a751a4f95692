//! A private beanstalkd for one case.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// A beanstalkd process on a free loopback port, killed when dropped.
pub(crate) struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    /// Starts `beanstalkd` (or `$BEANSTALKD_BIN`) and waits until it accepts
    /// connections.
    pub(crate) fn start() -> Result<Self, String> {
        let bin = std::env::var_os("BEANSTALKD_BIN").unwrap_or_else(|| "beanstalkd".into());
        for _ in 0..20 {
            // The kernel picks a free port; beanstalkd binds it right after.
            let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .and_then(|listener| listener.local_addr())
                .map_err(|e| format!("no free port: {e}"))?
                .port();
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            let child = Command::new(&bin)
                .args(["-l", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| {
                    format!(
                        "cannot start {}: {e} (install beanstalkd, e.g. `apt-get install beanstalkd`, \
                         or set BEANSTALKD_BIN, or use --addr)",
                        bin.to_string_lossy()
                    )
                })?;
            let mut server = Self { child, addr };
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = server.child.try_wait() {
                    break; // lost the port race: try another
                }
                if TcpStream::connect(addr).is_ok() {
                    return Ok(server);
                }
                thread::sleep(Duration::from_millis(2));
            }
            server.kill();
        }
        Err("beanstalkd did not start".into())
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}
