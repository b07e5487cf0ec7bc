//! A doorbell server on 127.0.0.1:0 with in-memory backends and a manual clock, and printers
//! that speak through the protocol crate's printer-side API over their own UDP sockets.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use printfleet_domain::clock::ManualClock;
use printfleet_domain::DeviceId;
use printfleet_doorbell::{
    Backends, CounterSnapshot, Doorbell, DoorbellConfig, DoorbellServer, InMemoryKeys,
    InMemoryReplayStore, InMemoryWorkQueue, ReplayStore,
};
use printfleet_protocol::heartbeat::{
    derive_heartbeat_key, open_answer, seal_request, Answer, HeartbeatKey, HeartbeatKeyId,
    HeartbeatKeys as DirectionKeys, Request, RequestType,
};
use tokio::net::UdpSocket;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// 2026-01-01T00:00:00Z.
pub const START_MS: i64 = 1_767_225_600_000;
/// Bound for things that must happen (generous: a loaded CI machine).
pub const WAIT: Duration = Duration::from_secs(5);
/// How long silence is listened for when asserting that nothing arrives.
pub const ABSENT: Duration = Duration::from_millis(300);

pub const HEARTBEAT: RequestType = RequestType::Heartbeat;
pub const KEEPALIVE: RequestType = RequestType::Keepalive;

/// The backends one or more servers share (a restart keeps them).
#[derive(Clone)]
pub struct World {
    pub keys: Arc<InMemoryKeys>,
    pub work: Arc<InMemoryWorkQueue>,
    pub replay: Arc<dyn ReplayStore>,
    pub clock: ManualClock,
}

impl World {
    pub fn new() -> Self {
        Self::with_replay(Arc::new(InMemoryReplayStore::new()))
    }

    pub fn with_replay(replay: Arc<dyn ReplayStore>) -> Self {
        Self {
            keys: Arc::new(InMemoryKeys::new()),
            work: Arc::new(InMemoryWorkQueue::new()),
            replay,
            clock: ManualClock::new(START_MS),
        }
    }

    pub fn backends(&self) -> Backends {
        Backends {
            keys: self.keys.clone(),
            replay: self.replay.clone(),
            work: self.work.clone(),
            clock: Arc::new(self.clock.clone()),
        }
    }

    pub fn test_config() -> DoorbellConfig {
        DoorbellConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            ..DoorbellConfig::default()
        }
    }

    pub async fn start(&self) -> Running {
        self.start_with(Self::test_config()).await
    }

    pub async fn start_with(&self, config: DoorbellConfig) -> Running {
        let server = DoorbellServer::bind(config, self.backends()).await.unwrap();
        let addr = server.local_addr().unwrap();
        let doorbell = server.doorbell();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run_until(async {
            let _ = stopped.await;
        }));
        Running {
            addr,
            doorbell,
            stop,
            task,
        }
    }

    /// An enrolled printer with its own socket on 127.0.0.1.
    pub async fn printer(&self) -> Printer {
        let id = DeviceId::new_random();
        let key = derive_heartbeat_key(id.as_uuid().as_bytes(), id.as_uuid().as_bytes());
        self.keys.insert(id, &key);
        Printer::new(id, &key).await
    }
}

/// A running server.
pub struct Running {
    pub addr: SocketAddr,
    pub doorbell: Doorbell,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Running {
    pub fn counters(&self) -> CounterSnapshot {
        self.doorbell.counters()
    }

    /// Waits (bounded) until the counters satisfy `cond`, then returns them.
    pub async fn wait_for(&self, cond: impl Fn(&CounterSnapshot) -> bool) -> CounterSnapshot {
        let waited = timeout(WAIT, async {
            loop {
                let c = self.counters();
                if cond(&c) {
                    return c;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        match waited {
            Ok(c) => c,
            Err(_) => panic!("counters never got there: {:?}", self.counters()),
        }
    }

    /// Stops the receive loop and waits for it to end.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        timeout(WAIT, self.task).await.unwrap().unwrap();
    }
}

/// A printer: the protocol crate's printer side over a real UDP socket.
pub struct Printer {
    pub id: DeviceId,
    pub key: HeartbeatKey,
    pub keys: DirectionKeys,
    pub socket: UdpSocket,
    counter: u64,
}

/// One request as sent, and the answer if one came.
pub struct Exchange {
    pub counter: u64,
    pub request: Vec<u8>,
    pub answer: Option<Answer>,
}

impl Printer {
    pub async fn new(id: DeviceId, key: &HeartbeatKey) -> Self {
        Self {
            id,
            key: key.clone(),
            keys: key.keys(),
            socket: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
            counter: 0,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.socket.local_addr().unwrap()
    }

    pub fn key_id(&self) -> HeartbeatKeyId {
        self.keys.key_id()
    }

    /// Moves to a new socket (a new NAT mapping), keeping keys and counter.
    pub async fn rebind(&mut self) {
        self.socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    }

    /// Seals the next request (new counter).
    pub fn seal(&mut self, kind: RequestType) -> (u64, Vec<u8>) {
        self.counter += 1;
        let bytes = seal_request(&self.keys, self.counter, Request { kind, flags: 0 }).unwrap();
        (self.counter, bytes)
    }

    /// Skips counters (as after a reboot with a reservation).
    pub fn skip_to(&mut self, counter: u64) {
        self.counter = counter - 1;
    }

    pub async fn send_raw(&self, to: SocketAddr, bytes: &[u8]) {
        let n = self.socket.send_to(bytes, to).await.unwrap();
        assert_eq!(n, bytes.len());
    }

    /// Sends a new request; does not wait for an answer.
    pub async fn send(&mut self, to: SocketAddr, kind: RequestType) -> (u64, Vec<u8>) {
        let (counter, bytes) = self.seal(kind);
        self.send_raw(to, &bytes).await;
        (counter, bytes)
    }

    /// Sends a new request and waits (bounded) for its answer.
    pub async fn ask(&mut self, to: SocketAddr, kind: RequestType) -> Exchange {
        let (counter, request) = self.send(to, kind).await;
        let answer = self.answer_for(to, counter, request.len(), WAIT).await;
        Exchange {
            counter,
            request,
            answer,
        }
    }

    /// Waits up to `within` for an answer carrying `counter` from `server`, checking that it is
    /// no larger than the `request_len`-byte request it answers.
    pub async fn answer_for(
        &self,
        server: SocketAddr,
        counter: u64,
        request_len: usize,
        within: Duration,
    ) -> Option<Answer> {
        let mut buf = [0u8; 2048];
        let (n, from) = timeout(within, self.socket.recv_from(&mut buf))
            .await
            .ok()?
            .unwrap();
        assert_eq!(from, server, "answers come from the heartbeat port");
        assert!(
            n <= request_len,
            "answer of {n} bytes to a request of {request_len}"
        );
        Some(open_answer(&self.keys, counter, &buf[..n]).unwrap())
    }

    /// Asserts that nothing arrives for [`ABSENT`].
    pub async fn assert_silence(&self) {
        let mut buf = [0u8; 2048];
        if let Ok(r) = timeout(ABSENT, self.socket.recv_from(&mut buf)).await {
            panic!("expected silence, got {r:?}");
        }
    }
}
