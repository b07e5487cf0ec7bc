//! The server's protocol sessions (`docs/protocol.md` §2.8): one per printer at most, made when
//! a printer's sealed `check_in` or `fetch` opens, used by its later session bodies so they cost
//! no public-key operation and no key look-up in the database.
//!
//! In memory only: a restart, an idle period, age or a full table makes the server forget a
//! session, and the printer's next session body is refused `unknown_session` (it then seals a
//! new opening). Revoking, removing or re-enrolling a printer forgets its session at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use printfleet_domain::DeviceId;
use printfleet_protocol::session::{SeqWindow, SessionId, SessionKeys, MAX_SESSION_AGE_MS};
use printfleet_protocol::PublicKey;
use printfleet_storage::resolver::DeviceKey;

/// A session nobody used for this long is forgotten (printers that check in less often open a
/// new one each time, which costs what every check-in cost without sessions).
pub const SESSION_IDLE_MS: i64 = 10 * 60 * 1000;
/// At most this many sessions are held; beyond it, printers simply keep sealing full bodies.
pub const MAX_SESSIONS: usize = 1 << 20;

/// What a session knows, fixed at its opening.
pub struct Session {
    pub keys: SessionKeys,
    pub sender: DeviceKey,
    pub sender_key: PublicKey,
    opened_ms: i64,
}

struct Entry {
    session: Arc<Session>,
    window: SeqWindow,
    last_ms: i64,
}

#[derive(Default)]
struct Table {
    by_id: HashMap<SessionId, Entry>,
    by_device: HashMap<DeviceId, SessionId>,
}

/// Why a session body's sequence number was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqRefused {
    /// The session was forgotten meanwhile.
    Gone,
    /// Accepted before, or too old for the window.
    Replayed,
}

pub struct Sessions {
    table: Mutex<Table>,
    capacity: usize,
}

impl Default for Sessions {
    fn default() -> Self {
        Self::with_capacity(MAX_SESSIONS)
    }
}

impl Sessions {
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            table: Mutex::new(Table::default()),
            capacity,
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Holds the session a printer just opened, replacing its previous one. Returns false when
    /// the table is full of live sessions (the printer then goes on without one).
    pub fn insert(
        &self,
        keys: SessionKeys,
        sender: DeviceKey,
        sender_key: PublicKey,
        now_ms: i64,
    ) -> bool {
        let device = sender.device;
        let id = keys.id;
        let mut t = self.table();
        if let Some(old) = t.by_device.remove(&device) {
            t.by_id.remove(&old);
        }
        if t.by_id.len() >= self.capacity {
            prune(&mut t, now_ms);
            if t.by_id.len() >= self.capacity {
                return false;
            }
        }
        let session = Arc::new(Session {
            keys,
            sender,
            sender_key,
            opened_ms: now_ms,
        });
        t.by_id.insert(
            id,
            Entry {
                session,
                window: SeqWindow::default(),
                last_ms: now_ms,
            },
        );
        t.by_device.insert(device, id);
        true
    }

    /// The live session named `id`, if the server holds it and it is neither too old nor idle.
    pub fn get(&self, id: &SessionId, now_ms: i64) -> Option<Arc<Session>> {
        let mut t = self.table();
        let e = t.by_id.get(id)?;
        if is_live(e, now_ms) {
            return Some(e.session.clone());
        }
        remove(&mut t, id);
        None
    }

    /// Records an authenticated body's sequence number (once only).
    pub fn accept(&self, id: &SessionId, seq: u64, now_ms: i64) -> Result<(), SeqRefused> {
        let mut t = self.table();
        let e = t.by_id.get_mut(id).ok_or(SeqRefused::Gone)?;
        if !e.window.accept(seq) {
            return Err(SeqRefused::Replayed);
        }
        e.last_ms = now_ms;
        Ok(())
    }

    /// Forgets a printer's session (revoked, removed, re-enrolled).
    pub fn forget(&self, device: DeviceId) {
        let mut t = self.table();
        if let Some(id) = t.by_device.remove(&device) {
            t.by_id.remove(&id);
        }
    }

    pub fn len(&self) -> usize {
        self.table().by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops sessions that are too old or idle.
    pub fn prune(&self, now_ms: i64) {
        prune(&mut self.table(), now_ms);
    }
}

fn is_live(e: &Entry, now_ms: i64) -> bool {
    let age = now_ms.saturating_sub(e.session.opened_ms);
    age <= MAX_SESSION_AGE_MS as i64 && now_ms.saturating_sub(e.last_ms) <= SESSION_IDLE_MS
}

fn remove(t: &mut Table, id: &SessionId) {
    if let Some(e) = t.by_id.remove(id) {
        if t.by_device.get(&e.session.sender.device) == Some(id) {
            t.by_device.remove(&e.session.sender.device);
        }
    }
}

fn prune(t: &mut Table, now_ms: i64) {
    let dead: Vec<SessionId> = t
        .by_id
        .iter()
        .filter(|(_, e)| !is_live(e, now_ms))
        .map(|(id, _)| *id)
        .collect();
    for id in dead {
        remove(t, &id);
    }
}

/// Bytes one held session costs, by `size_of` (the maps' own slots included; the printer's
/// 32-byte public key in `DeviceKey` is on the heap besides).
pub fn bytes_per_session() -> usize {
    std::mem::size_of::<Session>()
        + 2 * std::mem::size_of::<usize>() // the Arc's counts
        + std::mem::size_of::<(SessionId, Entry)>()
        + std::mem::size_of::<(DeviceId, SessionId)>()
        + 32
}

#[cfg(test)]
mod tests {
    use super::*;
    use printfleet_protocol::{Header, KeyPair, MessageType, ReplayCache};

    fn opening(printer: &KeyPair, server: &KeyPair) -> SessionKeys {
        let mut rng = printfleet_protocol::system_rng();
        let h = Header::new(
            MessageType::CheckIn,
            &printer.public,
            &server.public,
            1,
            &mut rng,
        );
        let (body, _) = printfleet_protocol::seal_opening(
            &server.public,
            &printer.private,
            &printer.public,
            &h,
            b"{}",
            &mut rng,
        )
        .unwrap();
        let limits = printfleet_protocol::OpenLimits::new(1);
        printfleet_protocol::open_opening(
            &server.private,
            &printer.public,
            body.as_bytes(),
            &limits,
            &mut ReplayCache::default(),
        )
        .unwrap()
        .2
    }

    fn key(device: DeviceId, printer: &KeyPair) -> DeviceKey {
        DeviceKey {
            tenant: printfleet_domain::TenantId::new_random(),
            device,
            public_key: printer.public.to_bytes().to_vec(),
            key_version: 1,
            revoked: false,
        }
    }

    #[test]
    fn one_session_per_printer_forgotten_on_demand_and_when_idle() {
        let server = KeyPair::derive(&[1; 32]);
        let printer = KeyPair::derive(&[2; 32]);
        let device = DeviceId::new_random();
        let s = Sessions::default();
        let first = opening(&printer, &server);
        let first_id = first.id;
        assert!(s.insert(first, key(device, &printer), printer.public.clone(), 0));
        assert!(s.get(&first_id, 1).is_some());
        assert_eq!(s.accept(&first_id, 1, 1), Ok(()));
        assert_eq!(s.accept(&first_id, 1, 1), Err(SeqRefused::Replayed));
        // A new opening replaces the old session.
        let second = opening(&printer, &server);
        let second_id = second.id;
        assert!(s.insert(second, key(device, &printer), printer.public.clone(), 2));
        assert!(s.get(&first_id, 2).is_none());
        assert_eq!(s.len(), 1);
        // Idle too long.
        assert!(s.get(&second_id, 2 + SESSION_IDLE_MS + 1).is_none());
        assert!(s.is_empty());
        let third = opening(&printer, &server);
        let third_id = third.id;
        assert!(s.insert(third, key(device, &printer), printer.public.clone(), 5));
        s.forget(device);
        assert!(s.get(&third_id, 5).is_none());
        assert_eq!(s.accept(&third_id, 2, 5), Err(SeqRefused::Gone));
    }

    #[test]
    fn a_full_table_refuses_new_sessions_until_old_ones_expire() {
        let server = KeyPair::derive(&[1; 32]);
        let s = Sessions::with_capacity(2);
        for i in 0..2u8 {
            let p = KeyPair::derive(&[10 + i; 32]);
            assert!(s.insert(
                opening(&p, &server),
                key(DeviceId::new_random(), &p),
                p.public.clone(),
                0
            ));
        }
        let p = KeyPair::derive(&[20; 32]);
        assert!(!s.insert(
            opening(&p, &server),
            key(DeviceId::new_random(), &p),
            p.public.clone(),
            1
        ));
        assert!(s.insert(
            opening(&p, &server),
            key(DeviceId::new_random(), &p),
            p.public.clone(),
            SESSION_IDLE_MS + 10
        ));
        assert_eq!(s.len(), 1);
    }
}
