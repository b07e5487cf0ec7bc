//! The baseline: what delivering one datagram to every printer costs on this machine without the
//! doorbell. A bare UDP socket (the doorbell's receive buffer, on 127.0.0.1) sends each printer
//! one prepared 35-byte datagram at its socket, as fast as the socket takes them; the printers'
//! sockets receive and check them with the same task and code as the rings. No database, no key
//! look-up, no sealing at send time: the floor under the ring latency.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use printfleet_server::doorbell::service as doorbell;

use super::fleet::{send_to, Fleet, Mode};

pub struct Baseline {
    /// When the first datagram was sent.
    pub t0: Instant,
    pub arrivals: Vec<Option<Instant>>,
    pub received: usize,
    /// How long sending all of them took.
    pub sent_in: Duration,
}

pub async fn run(fleet: &mut Fleet, timeout: Duration) -> anyhow::Result<Baseline> {
    let datagrams = fleet.baseline_datagrams()?;
    let socket = doorbell::bind_udp(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        doorbell::DEFAULT_RECV_BUFFER,
    )?;
    let listening = fleet.start(Mode::Baseline, timeout, None);
    // Let the sockets' tasks reach their receive loop, as the rings' listeners had.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let t0 = Instant::now();
    for (to, d) in &datagrams {
        send_to(&socket, d, *to).await?;
    }
    let sent_in = t0.elapsed();
    let pass = fleet.finish(listening).await?;
    Ok(Baseline {
        t0,
        arrivals: pass.arrivals,
        received: pass.received,
        sent_in,
    })
}
