//! Heartbeats over UDP: one datagram out, at most one back.

use crate::counter::CounterSource;
use crate::enrol::AgentError;
use printfleet_protocol::heartbeat::{
    open_answer, seal_request, AnswerType, HeartbeatKeys, Request, RequestType,
};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::UdpSocket;

/// What a heartbeat brought back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    Nothing,
    ComeFetch,
    /// No (valid) answer within the timeout: retry later, or fall back to HTTPS.
    NoAnswer,
}

pub struct Heartbeater {
    socket: UdpSocket,
    keys: HeartbeatKeys,
    counter: Box<dyn CounterSource>,
    timeout: Duration,
}

impl Heartbeater {
    /// A socket bound to an ephemeral local port, aimed at the server's heartbeat address.
    pub async fn connect(
        server: SocketAddr,
        keys: HeartbeatKeys,
        counter: Box<dyn CounterSource>,
    ) -> Result<Self, AgentError> {
        let local: SocketAddr = if server.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        }
        .parse()
        .map_err(|_| AgentError::BadAnswer("address".into()))?;
        let socket = UdpSocket::bind(local).await?;
        socket.connect(server).await?;
        Ok(Self {
            socket,
            keys,
            counter,
            timeout: Duration::from_secs(2),
        })
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sends one heartbeat (or keep-alive) and waits for its answer.
    pub async fn beat(&mut self, kind: RequestType) -> Result<Reply, AgentError> {
        self.beat_and_wait(kind, self.timeout).await
    }

    /// Sends a keep-alive and listens for up to `wait` (until the next keep-alive is due): the
    /// server holds keep-alives and answers one with "come fetch" the moment work appears for
    /// this printer (docs/protocol.md §3.5). `NoAnswer` is the normal outcome.
    pub async fn keepalive_and_listen(&mut self, wait: Duration) -> Result<Reply, AgentError> {
        self.beat_and_wait(RequestType::Keepalive, wait).await
    }

    async fn beat_and_wait(
        &mut self,
        kind: RequestType,
        timeout: Duration,
    ) -> Result<Reply, AgentError> {
        let counter = self.counter.next()?;
        let datagram = seal_request(&self.keys, counter, Request { kind, flags: 0 })
            .map_err(|e| AgentError::BadAnswer(e.code().into()))?;
        self.socket.send(&datagram).await?;
        let mut buf = [0u8; 64];
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let n = match tokio::time::timeout_at(deadline, self.socket.recv(&mut buf)).await {
                Ok(r) => r?,
                Err(_) => return Ok(Reply::NoAnswer),
            };
            // Anything that is not the answer to this counter is ignored, not trusted.
            if let Ok(a) = open_answer(&self.keys, counter, &buf[..n]) {
                return Ok(match a.kind {
                    AnswerType::Nothing => Reply::Nothing,
                    AnswerType::ComeFetch => Reply::ComeFetch,
                });
            }
        }
    }
}
