//! A link with a delay, in user space: a TCP proxy that holds every chunk it relays, in both
//! directions, for a fixed time before passing it on, in order. The federation benchmark puts
//! one in front of each site's federation listener (the site advertises the proxy), so every
//! exchange between two sites crosses one delayed link each way, as DFaaS's emulated links
//! did. (`tc netem` would do it in the kernel; this machine's kernel has no netem.)

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Most bytes held in flight one way on one connection before reading pauses.
const WINDOW_CHUNKS: usize = 1024;

/// Relays `from` to `to`, each chunk `delay` after it was read.
async fn relay(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(tokio::time::Instant, Vec<u8>)>(WINDOW_CHUNKS);
    let reader = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let due = tokio::time::Instant::now() + delay;
                    if tx.send((due, buf[..n].to_vec())).await.is_err() {
                        break;
                    }
                }
            }
        }
    };
    let writer = async move {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}

/// Serves the proxy on `listener`, relaying each connection to `target` with `delay` each
/// way, until the task is dropped.
pub async fn serve(listener: TcpListener, target: String, delay: Duration) {
    loop {
        let Ok((inbound, _)) = listener.accept().await else {
            continue;
        };
        let target = target.clone();
        tokio::spawn(async move {
            let Ok(outbound) = TcpStream::connect(&target).await else {
                return;
            };
            let _ = (inbound.set_nodelay(true), outbound.set_nodelay(true));
            let (in_read, in_write) = inbound.into_split();
            let (out_read, out_write) = outbound.into_split();
            tokio::join!(
                relay(in_read, out_write, delay),
                relay(out_read, in_write, delay)
            );
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bytes_arrive_in_order_after_the_delay_each_way() {
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let echo_address = echo.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut socket, _) = echo.accept().await.unwrap();
            let mut buf = [0u8; 5];
            socket.read_exact(&mut buf).await.unwrap();
            socket.write_all(&buf).await.unwrap();
        });
        let proxy = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy_address = proxy.local_addr().unwrap();
        let delay = Duration::from_millis(30);
        let served = tokio::spawn(serve(proxy, echo_address, delay));
        let started = tokio::time::Instant::now();
        let mut client = TcpStream::connect(proxy_address).await.unwrap();
        client.write_all(b"hello").await.unwrap();
        let mut back = [0u8; 5];
        client.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"hello");
        // Delayed once each way: never sooner than twice the delay.
        assert!(started.elapsed() >= delay * 2, "{:?}", started.elapsed());
        served.abort();
    }
}
