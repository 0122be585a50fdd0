//! `bullpen probe`: one GET against the server on this host, for a container's HEALTHCHECK
//! where the image has no HTTP client. Exit 0 on a 2xx answer, 1 otherwise.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Context, bail};

/// GETs `path` on 127.0.0.1:`port` within `timeout` and fails unless the status is 2xx.
pub fn probe(port: u16, path: &str, timeout: Duration) -> anyhow::Result<()> {
    if !path.starts_with('/') || path.bytes().any(|b| !b.is_ascii_graphic()) {
        bail!("`{path}` is not a path such as /ready");
    }
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&address, timeout)
        .with_context(|| format!("connecting to {address}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    // The status line is all that is read: `HTTP/1.1 200 OK`.
    let mut head = [0_u8; 12];
    stream
        .read_exact(&mut head)
        .with_context(|| format!("reading the answer to GET {path}"))?;
    let status = std::str::from_utf8(&head[9..12]).unwrap_or("???");
    if !head.starts_with(b"HTTP/1.") || !status.starts_with('2') {
        bail!("GET {path} answered {status}");
    }
    Ok(())
}
