//! TCP listeners: bind with a large backlog, accept, and hand each connection to a session.
//!
//! tokio's default backlog (128) overflows when thousands of vehicles reconnect at once
//! after a base-station handover or a gateway restart; the kernel then drops SYNs and the
//! terminals back off for minutes. We bind with [`BACKLOG`] (capped by the kernel's
//! `somaxconn`). Accept errors such as EMFILE are logged and retried after a pause instead
//! of ending the listener.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// The listen backlog requested from the kernel.
pub const BACKLOG: u32 = 65_535;

/// Binds `addr` with a large backlog and SO_REUSEADDR.
pub fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    bind_with(addr, false)
}

/// [`bind`], with SO_REUSEPORT when `reuse_port` (a listener's `reuse_port = true`: several
/// vgate processes on one host share the port, the kernel spreading connections over them).
pub fn bind_with(addr: SocketAddr, reuse_port: bool) -> anyhow::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .with_context(|| format!("creating a socket for {addr}"))?;
    socket
        .set_reuseaddr(true)
        .with_context(|| format!("SO_REUSEADDR on {addr}"))?;
    if reuse_port {
        #[cfg(all(unix, not(target_os = "solaris"), not(target_os = "illumos")))]
        socket
            .set_reuseport(true)
            .with_context(|| format!("SO_REUSEPORT on {addr}"))?;
        #[cfg(not(all(unix, not(target_os = "solaris"), not(target_os = "illumos"))))]
        anyhow::bail!("reuse_port: SO_REUSEPORT is not available on this system");
    }
    socket
        .bind(addr)
        .with_context(|| format!("binding {addr}"))?;
    socket
        .listen(BACKLOG)
        .with_context(|| format!("listening on {addr}"))
}

/// Accepts connections until `shutdown` is cancelled, spawning `serve(stream, peer)` for each.
pub async fn accept_loop<F, Fut>(
    name: &'static str,
    listener: TcpListener,
    shutdown: CancellationToken,
    serve: F,
) where
    F: Fn(TcpStream, SocketAddr) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                metrics::counter!("vgate_connections_total", "listener" => name).increment(1);
                tokio::spawn(serve(stream, peer));
            }
            Err(e) => {
                // EMFILE/ENFILE/ECONNABORTED: keep the listener alive, back off briefly.
                metrics::counter!("vgate_accept_errors_total", "listener" => name).increment(1);
                warn!(listener = name, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    info!(listener = name, "stopped accepting");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reuse_port_lets_two_listeners_share_a_port() {
        let a = bind_with("127.0.0.1:0".parse().unwrap(), true).unwrap();
        let addr = a.local_addr().unwrap();
        let b = bind_with(addr, true).expect("a second listener on the same port");
        assert_eq!(b.local_addr().unwrap(), addr);
        drop(b);
        assert!(
            bind_with(addr, false).is_err(),
            "without reuse_port the port is taken"
        );
    }
}
