//! The baseline: a bare UDP echo server with the doorbell's I/O style — one task, woken when the
//! socket is readable, reading every datagram waiting with `try_recv_from` and sending each
//! straight back with `try_send_to` (`send_to` when the socket buffer is full), same receive
//! buffer — and nothing else: no crypto, no storage, no bookkeeping.

use std::io;
use std::net::SocketAddr;

use tokio::net::UdpSocket;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Datagrams read per wake-up (as the doorbell).
const RECV_BATCH: usize = 256;

pub struct Echo {
    pub addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<u64>,
}

impl Echo {
    pub fn start(socket: UdpSocket) -> io::Result<Self> {
        let addr = socket.local_addr()?;
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(serve(socket, stopped));
        Ok(Self { addr, stop, task })
    }

    /// Stops it; returns how many datagrams it echoed.
    pub async fn stop(self) -> u64 {
        let _ = self.stop.send(());
        self.task.await.unwrap_or(0)
    }
}

async fn serve(socket: UdpSocket, mut stop: oneshot::Receiver<()>) -> u64 {
    let mut echoed = 0u64;
    let mut buf = [0u8; 512];
    loop {
        tokio::select! {
            biased;
            _ = &mut stop => return echoed,
            r = socket.readable() => {
                if r.is_err() {
                    continue;
                }
                for _ in 0..RECV_BATCH {
                    let (n, from) = match socket.try_recv_from(&mut buf) {
                        Ok(x) => x,
                        Err(_) => break,
                    };
                    let d = buf.get(..n).unwrap_or(&buf);
                    let sent = match socket.try_send_to(d, from) {
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            socket.send_to(d, from).await
                        }
                        r => r,
                    };
                    if sent.is_ok() {
                        echoed += 1;
                    }
                }
            }
        }
    }
}
