//! The printer's HTTPS side after enrolment (docs/protocol.md §7): sealed check-ins and work
//! fetches (also as a long-poll where UDP is blocked), tried on the server's ports in order
//! (443, then 631) and sticking to the first that answers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use printfleet_protocol::messages::{
    message_id_hex, CheckIn, CheckInAck, Fetch, Work, WorkAck, MAX_WAIT_MS,
};
use printfleet_protocol::session::{self, Direction, PrinterSession, SessionHeader, SessionKeys};
use printfleet_protocol::{Header, MessageType, OpenLimits, ReplayCache};
use std::sync::Arc;

use crate::enrol::{AgentError, Enrolment};

/// The server's base URLs in order of preference, e.g. the same host on 443 then 631.
pub fn base_urls(host: &str, ports: &[u16]) -> Vec<String> {
    ports
        .iter()
        .map(|p| format!("https://{host}:{p}"))
        .collect()
}

/// Freshness limits for an answer that may arrive up to `timeout` after sealing (a long-poll).
fn answer_limits(now_ms: u64, timeout: Duration) -> OpenLimits {
    let now = now_ms.saturating_add(timeout.as_millis() as u64 / 2);
    let mut limits = OpenLimits::new(now);
    limits.max_skew_ms = limits
        .max_skew_ms
        .saturating_add(timeout.as_millis() as u64);
    limits
}

/// A clear refusal of a body the server could not open (`{"code", "message"}`).
fn refused(status: u16, body: &[u8]) -> AgentError {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    AgentError::Refused {
        status,
        code: v["code"].as_str().unwrap_or("unknown").to_string(),
        message: v["message"].as_str().unwrap_or("").to_string(),
    }
}

pub struct DeviceClient {
    http: reqwest::Client,
    bases: Vec<String>,
    /// Index into `bases` of the endpoint that answered last.
    current: AtomicUsize,
    enrolment: Enrolment,
    /// Answers are accepted once; small, a printer receives few bodies.
    replay: Mutex<ReplayCache>,
    /// The protocol session (§2.8) of the latest opening, if sessions are used.
    session: Mutex<Option<PrinterSession>>,
    use_sessions: bool,
}

impl std::fmt::Debug for DeviceClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceClient")
            .field("bases", &self.bases)
            .field("enrolment", &self.enrolment)
            .finish_non_exhaustive()
    }
}

impl DeviceClient {
    /// `bases`: the server's base URLs in order of preference (at least one).
    pub fn new(http: reqwest::Client, bases: Vec<String>, enrolment: Enrolment) -> Self {
        Self {
            http,
            bases,
            current: AtomicUsize::new(0),
            enrolment,
            replay: Mutex::new(ReplayCache::new(64)),
            session: Mutex::new(None),
            use_sessions: true,
        }
    }

    /// Seals every request with HPKE and never uses a session (as printers did before §2.8;
    /// for comparisons and tests).
    pub fn without_sessions(mut self) -> Self {
        self.use_sessions = false;
        self
    }

    /// Whether the next request would go in a session.
    pub fn has_session(&self) -> bool {
        self.lock_session().is_some()
    }

    fn lock_session(&self) -> std::sync::MutexGuard<'_, Option<PrinterSession>> {
        self.session
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The session and seq for the next body, if one is usable.
    fn next_in_session(&self, now_ms: u64) -> Option<(Arc<SessionKeys>, u64)> {
        let mut held = self.lock_session();
        let next = held.as_mut().and_then(|h| h.next_body(now_ms));
        if next.is_none() {
            *held = None;
        }
        next
    }

    pub fn enrolment(&self) -> &Enrolment {
        &self.enrolment
    }

    /// Gives the enrolment back (e.g. to talk to other server addresses).
    pub fn into_enrolment(self) -> Enrolment {
        self.enrolment
    }

    /// The base URL in use (the last that answered).
    pub fn base(&self) -> &str {
        let i = self.current.load(Ordering::Relaxed) % self.bases.len().max(1);
        self.bases.get(i).map(String::as_str).unwrap_or("")
    }

    /// POSTs to `path` on the endpoint in use, falling back to the next ones when a
    /// connection cannot be made (not on an HTTP answer: the server was reached).
    async fn post(
        &self,
        path: &str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<(u16, Vec<u8>), AgentError> {
        let n = self.bases.len().max(1);
        let start = self.current.load(Ordering::Relaxed);
        let mut last = None;
        for k in 0..n {
            let i = (start + k) % n;
            let Some(base) = self.bases.get(i) else { break };
            let r = self
                .http
                .post(format!("{}{path}", base.trim_end_matches('/')))
                .header("content-type", "application/octet-stream")
                .timeout(timeout)
                .body(body.clone())
                .send()
                .await;
            match r {
                Ok(resp) => {
                    self.current.store(i, Ordering::Relaxed);
                    let status = resp.status().as_u16();
                    let bytes = resp.bytes().await?;
                    return Ok((status, bytes.to_vec()));
                }
                Err(e) if e.is_connect() => last = Some(e),
                Err(e) => return Err(e.into()),
            }
        }
        Err(last.map_or_else(|| AgentError::BadAnswer("no server URL".into()), Into::into))
    }

    /// Sends `plaintext` as `kind` and opens the answer of `answer_kind`: in the session when
    /// one is held (§2.8), else as a sealed body that opens a new session. A session the
    /// server no longer holds (`unknown_session`) is dropped and the request sealed again.
    /// Returns the HTTP status, the request's message id (hex) and the answer's plaintext.
    async fn exchange(
        &self,
        path: &str,
        kind: MessageType,
        answer_kind: MessageType,
        plaintext: &[u8],
        now_ms: u64,
        timeout: Duration,
    ) -> Result<(u16, String, Vec<u8>), AgentError> {
        if self.use_sessions {
            if let Some((keys, seq)) = self.next_in_session(now_ms) {
                match self
                    .exchange_in_session(
                        path,
                        kind,
                        answer_kind,
                        plaintext,
                        now_ms,
                        timeout,
                        &keys,
                        seq,
                    )
                    .await
                {
                    Err(AgentError::Refused { code, .. }) if code == "unknown_session" => {
                        let mut held = self.lock_session();
                        if held.as_ref().is_some_and(|h| Arc::ptr_eq(&h.keys, &keys)) {
                            *held = None;
                        }
                    }
                    other => return other,
                }
            }
        }
        self.exchange_sealed(path, kind, answer_kind, plaintext, now_ms, timeout)
            .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn exchange_in_session(
        &self,
        path: &str,
        kind: MessageType,
        answer_kind: MessageType,
        plaintext: &[u8],
        now_ms: u64,
        timeout: Duration,
        keys: &SessionKeys,
        seq: u64,
    ) -> Result<(u16, String, Vec<u8>), AgentError> {
        let header = SessionHeader {
            message_type: kind,
            session_id: keys.id,
            seq,
            timestamp_ms: now_ms,
        };
        let body = session::seal_in_session(keys, Direction::Up, &header, plaintext)
            .map_err(|err| AgentError::BadAnswer(format!("sealing: {}", err.code())))?;
        let (status, answer) = self.post(path, body, timeout).await?;
        if !session::is_session_body(&answer) {
            return Err(refused(status, &answer));
        }
        let limits = answer_limits(now_ms, timeout);
        let (h, plain) = session::open_in_session(keys, Direction::Down, &answer, &limits)
            .map_err(|err| AgentError::BadAnswer(format!("answer: {}", err.code())))?;
        // The answer is bound to this request by its seq (and the nonce made from it).
        if h.seq != seq || h.message_type != answer_kind {
            return Err(AgentError::BadAnswer("answer to another request".into()));
        }
        Ok((status, message_id_hex(&header.message_id()), plain))
    }

    async fn exchange_sealed(
        &self,
        path: &str,
        kind: MessageType,
        answer_kind: MessageType,
        plaintext: &[u8],
        now_ms: u64,
        timeout: Duration,
    ) -> Result<(u16, String, Vec<u8>), AgentError> {
        let e = &self.enrolment;
        let mut rng = printfleet_protocol::system_rng();
        let header = Header::new(kind, &e.key.public, &e.server_key, now_ms, &mut rng);
        let (sealed, keys) = printfleet_protocol::seal_opening(
            &e.server_key,
            &e.key.private,
            &e.key.public,
            &header,
            plaintext,
            &mut rng,
        )
        .map_err(|err| AgentError::BadAnswer(format!("sealing: {}", err.code())))?;
        let (status, body) = self.post(path, sealed.into_bytes(), timeout).await?;
        let is_sealed = body.starts_with(b"PFS");
        if !is_sealed {
            return Err(refused(status, &body));
        }
        let limits = answer_limits(now_ms, timeout);
        let (h, plain) = {
            let mut replay = self
                .replay
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            printfleet_protocol::open(&e.key.private, &e.server_key, &body, &limits, &mut *replay)
                .map_err(|err| AgentError::BadAnswer(format!("answer: {}", err.code())))?
        };
        if h.message_type != answer_kind {
            return Err(AgentError::BadAnswer("answer of another type".into()));
        }
        // The server opened the body, so it holds the session it made (unless its table was
        // full: the first session body then comes back `unknown_session`).
        if self.use_sessions {
            *self.lock_session() = Some(PrinterSession::new(keys, now_ms));
        }
        Ok((status, message_id_hex(&header.message_id), plain))
    }

    /// Sends a report; returns the server's acknowledgement (stored, duplicate or refused with
    /// a code). Only `stored`/`duplicate` mean the report is durable on the server.
    pub async fn check_in(&self, report: &CheckIn, now_ms: u64) -> Result<CheckInAck, AgentError> {
        let (_, id, plain) = self
            .exchange(
                "/device/v1/check-in",
                MessageType::CheckIn,
                MessageType::CheckInAck,
                &report.encode(),
                now_ms,
                Duration::from_secs(30),
            )
            .await?;
        let ack = CheckInAck::decode(&plain)
            .map_err(|err| AgentError::BadAnswer(format!("check_in_ack: {err}")))?;
        if ack.reply_to != id {
            return Err(AgentError::BadAnswer("ack for another request".into()));
        }
        Ok(ack)
    }

    /// Fetches pending work, acknowledging `acks`. `wait_ms` > 0 makes it a long-poll.
    pub async fn fetch(
        &self,
        acks: Vec<WorkAck>,
        wait_ms: u64,
        now_ms: u64,
    ) -> Result<Work, AgentError> {
        let req = Fetch {
            acks,
            wait_ms: wait_ms.min(MAX_WAIT_MS),
        };
        let (status, id, plain) = self
            .exchange(
                "/device/v1/fetch",
                MessageType::Fetch,
                MessageType::Work,
                &req.encode(),
                now_ms,
                Duration::from_millis(req.wait_ms + 30_000),
            )
            .await?;
        if status != 200 {
            return Err(AgentError::BadAnswer(format!("fetch answered {status}")));
        }
        let work =
            Work::decode(&plain).map_err(|err| AgentError::BadAnswer(format!("work: {err}")))?;
        if work.reply_to != id {
            return Err(AgentError::BadAnswer("work for another request".into()));
        }
        Ok(work)
    }
}
