//! A delaying TCP proxy for one link: the caller connects to it instead of the callee, and
//! every chunk the callee sends back is held for the current delay before it is passed on.
//! The callee's own work (its server spans) is unchanged; the caller's client spans see
//! the delay, as they would a slow network path or a congested sidecar on the caller's side.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A running proxy; dropping it stops accepting (open connections end with their peers).
#[derive(Debug)]
pub struct Proxy {
    /// `127.0.0.1:port` the caller connects to.
    pub addr: String,
    delay_us: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `upstream` (`host:port`).
    pub async fn start(upstream: String) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?.to_string();
        let delay_us = Arc::new(AtomicU64::new(0));
        let d = delay_us.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let (up, d) = (upstream.clone(), d.clone());
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(&up).await {
                        let _ = client.set_nodelay(true);
                        let _ = server.set_nodelay(true);
                        pipe(client, server, d).await;
                    }
                });
            }
        });
        Ok(Proxy {
            addr,
            delay_us,
            task,
        })
    }

    /// Sets the delay added to every answer chunk.
    pub fn set_delay(&self, d: Duration) {
        self.delay_us.store(d.as_micros() as u64, Ordering::Relaxed);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn pipe(client: TcpStream, server: TcpStream, delay_us: Arc<AtomicU64>) {
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let up = async {
        let _ = tokio::io::copy(&mut cr, &mut sw).await;
        let _ = sw.shutdown().await;
    };
    let down = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match sr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let d = delay_us.load(Ordering::Relaxed);
            if d > 0 {
                tokio::time::sleep(Duration::from_micros(d)).await;
            }
            if cw.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = cw.shutdown().await;
    };
    tokio::join!(up, down);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[tokio::test]
    async fn the_proxy_forwards_both_ways_and_delays_answers() {
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let echo_addr = echo.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = echo.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut b = [0u8; 64];
                    while let Ok(n) = s.read(&mut b).await {
                        if n == 0 || s.write_all(&b[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        let p = Proxy::start(echo_addr).await.unwrap();
        let mut c = TcpStream::connect(&p.addr).await.unwrap();
        let mut b = [0u8; 5];
        let t = Instant::now();
        c.write_all(b"hello").await.unwrap();
        c.read_exact(&mut b).await.unwrap();
        assert_eq!(&b, b"hello");
        let fast = t.elapsed();
        p.set_delay(Duration::from_millis(60));
        let t = Instant::now();
        c.write_all(b"again").await.unwrap();
        c.read_exact(&mut b).await.unwrap();
        assert_eq!(&b, b"again");
        assert!(
            t.elapsed() >= Duration::from_millis(60),
            "{:?}",
            t.elapsed()
        );
        assert!(fast < Duration::from_millis(60), "{fast:?}");
    }
}
