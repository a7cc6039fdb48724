//! The enclave table: every enclave of the node, its owner, its state and its EPC charge, with the
//! EPC ledger under the same lock.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use coffer_boundary::EnclaveChild;
use coffer_channel::{Channel, EnclaveState};
use coffer_proto::client::EnclaveStatus;

use crate::epc::{EpcExhausted, EpcLedger};

/// The most enclaves a node runs at once. Each has a supervising thread; the cap keeps a client
/// that creates many tiny enclaves from exhausting the daemon's threads.
pub const MAX_ENCLAVES: usize = 1024;

/// A launched enclave's process and channel.
#[derive(Debug)]
pub struct Live {
    pub child: EnclaveChild,
    pub channel: Channel,
}

/// Where an enclave is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Starting,
    Running,
    Lost(String),
    /// A destroy is in progress; the destroyer removes the entry.
    Destroying,
}

/// One enclave.
#[derive(Debug)]
pub struct Entry {
    pub id: u64,
    /// The connection that created it.
    pub conn: u64,
    pub owner_uid: u32,
    pub mrenclave: [u8; 32],
    pub mrsigner: [u8; 32],
    pub debug: bool,
    pub epc_bytes: u64,
    /// Whether `epc_bytes` are still charged to the ledger.
    pub charged: bool,
    pub state: State,
    /// Set once the process runs.
    pub live: Option<Arc<Live>>,
}

impl Entry {
    pub fn status(&self) -> EnclaveStatus {
        let (state, lost_reason) = match &self.state {
            State::Starting => ("starting", None),
            State::Running => ("running", None),
            State::Lost(r) => ("lost", Some(r.clone())),
            State::Destroying => ("destroying", None),
        };
        EnclaveStatus {
            id: self.id,
            pid: self.live.as_ref().map_or(0, |l| l.child.pid()),
            mrenclave: self.mrenclave,
            mrsigner: self.mrsigner,
            debug: self.debug,
            epc_bytes: self.epc_bytes,
            state: state.into(),
            lost_reason,
            owner_uid: self.owner_uid,
        }
    }
}

/// Why a new entry could not be added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdmitError {
    Epc(EpcExhausted),
    /// The owner's enclaves already hold `in_use` bytes; `asked` more would exceed `quota`.
    Quota {
        in_use: u64,
        asked: u64,
        quota: u64,
    },
    TooMany,
}

/// Takes the table's lock. A thread that panicked while holding it cannot have left it half
/// changed (every change is a single insert, remove or field store), so a poisoned lock is
/// taken over rather than taking the daemon down.
pub fn lock(table: &Mutex<Table>) -> MutexGuard<'_, Table> {
    table.lock().unwrap_or_else(|e| e.into_inner())
}

/// A `Starting` entry and its EPC charge, held while the enclave is launched. Dropped without
/// [`Reservation::commit`] (a refused or failed launch, on any path), it removes the entry and
/// returns the EPC: the undo cannot be forgotten.
#[derive(Debug)]
pub struct Reservation<'a> {
    table: &'a Mutex<Table>,
    id: u64,
    committed: bool,
}

impl<'a> Reservation<'a> {
    /// Charges the EPC (within the owner's `quota`, if any) and adds a `Starting` entry.
    pub fn new(
        table: &'a Mutex<Table>,
        new: NewEntry,
        quota: Option<u64>,
    ) -> Result<Self, AdmitError> {
        let id = lock(table).admit(new, quota)?;
        Ok(Reservation {
            table,
            id,
            committed: false,
        })
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    /// The enclave runs: its entry becomes `Running` with its process and channel.
    pub fn running(&self, live: Arc<Live>) {
        if let Some(entry) = lock(self.table).enclaves.get_mut(&self.id) {
            entry.state = State::Running;
            entry.live = Some(live);
        }
    }

    /// Keeps the entry: from now on its supervisor and its destroyer own it.
    pub fn commit(mut self) {
        self.committed = true;
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.committed {
            lock(self.table).remove(self.id);
        }
    }
}

/// The enclaves and the EPC ledger.
#[derive(Debug)]
pub struct Table {
    pub epc: EpcLedger,
    pub enclaves: BTreeMap<u64, Entry>,
    next_id: u64,
}

/// What a new entry is made of.
#[derive(Debug, Clone)]
pub struct NewEntry {
    pub conn: u64,
    pub owner_uid: u32,
    pub mrenclave: [u8; 32],
    pub mrsigner: [u8; 32],
    pub debug: bool,
    pub epc_bytes: u64,
}

impl Table {
    pub fn new(epc_total: u64) -> Self {
        Table {
            epc: EpcLedger::new(epc_total),
            enclaves: BTreeMap::new(),
            next_id: 1,
        }
    }

    /// The EPC the enclaves of `uid` hold now.
    pub fn epc_of(&self, uid: u32) -> u64 {
        self.enclaves
            .values()
            .filter(|e| e.owner_uid == uid && e.charged)
            .map(|e| e.epc_bytes)
            .sum()
    }

    /// Charges the EPC (within the owner's `quota`, if any) and adds a `Starting` entry, both or
    /// neither. Returns the new id.
    pub fn admit(&mut self, new: NewEntry, quota: Option<u64>) -> Result<u64, AdmitError> {
        if self.enclaves.len() >= MAX_ENCLAVES {
            return Err(AdmitError::TooMany);
        }
        if let Some(quota) = quota {
            let in_use = self.epc_of(new.owner_uid);
            if in_use.saturating_add(new.epc_bytes) > quota {
                return Err(AdmitError::Quota {
                    in_use,
                    asked: new.epc_bytes,
                    quota,
                });
            }
        }
        self.epc.charge(new.epc_bytes).map_err(AdmitError::Epc)?;
        let id = self.next_id;
        self.next_id += 1;
        self.enclaves.insert(
            id,
            Entry {
                id,
                conn: new.conn,
                owner_uid: new.owner_uid,
                mrenclave: new.mrenclave,
                mrsigner: new.mrsigner,
                debug: new.debug,
                epc_bytes: new.epc_bytes,
                charged: true,
                state: State::Starting,
                live: None,
            },
        );
        Ok(id)
    }

    /// Removes an entry and returns its EPC if it still holds it.
    pub fn remove(&mut self, id: u64) -> Option<Entry> {
        let mut entry = self.enclaves.remove(&id)?;
        uncharge(&mut self.epc, &mut entry);
        Some(entry)
    }

    /// Marks a running enclave lost (its channel too) with `reason`. Returns whether it was
    /// running (a second loss keeps the first reason).
    pub fn mark_lost(&mut self, id: u64, code: u32, reason: &str) -> bool {
        let Some(entry) = self.enclaves.get_mut(&id) else {
            return false;
        };
        if !matches!(entry.state, State::Running | State::Starting) {
            return false;
        }
        if let Some(live) = &entry.live {
            live.channel.mark_lost(EnclaveState::Lost, code, reason);
        }
        entry.state = State::Lost(reason.to_owned());
        true
    }

    /// The enclave's process has ended: it is lost (unless being destroyed, or already lost with
    /// an earlier reason) and its EPC goes back to the node.
    pub fn process_ended(&mut self, id: u64, code: u32, reason: &str) {
        let destroying = self
            .enclaves
            .get(&id)
            .is_some_and(|e| e.state == State::Destroying);
        if destroying {
            return;
        }
        self.mark_lost(id, code, reason);
        if let Some(entry) = self.enclaves.get_mut(&id) {
            uncharge(&mut self.epc, entry);
        }
    }
}

fn uncharge(epc: &mut EpcLedger, entry: &mut Entry) {
    if entry.charged {
        epc.release(entry.epc_bytes);
        entry.charged = false;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn new(conn: u64, epc_bytes: u64) -> NewEntry {
        NewEntry {
            conn,
            owner_uid: 1000,
            mrenclave: [1; 32],
            mrsigner: [2; 32],
            debug: false,
            epc_bytes,
        }
    }

    #[test]
    fn charges_at_admission_and_refuses_what_does_not_fit() {
        let mut t = Table::new(100);
        let a = t.admit(new(1, 60), None).unwrap();
        assert_eq!(t.epc.used(), 60);
        assert_eq!(
            t.admit(new(1, 41), None),
            Err(AdmitError::Epc(EpcExhausted {
                asked: 41,
                free: 40,
                total: 100
            }))
        );
        assert_eq!(t.enclaves.len(), 1, "no partial enclave");
        t.remove(a).unwrap();
        assert_eq!(t.epc.used(), 0);
        t.admit(new(1, 100), None).unwrap();
    }

    #[test]
    fn keeps_a_lost_enclave_listed_with_its_epc_returned() {
        let mut t = Table::new(100);
        let a = t.admit(new(1, 60), None).unwrap();
        t.enclaves.get_mut(&a).unwrap().state = State::Running;
        t.process_ended(a, 2, "crashed (signal 11)");
        let s = t.enclaves[&a].status();
        assert_eq!(s.state, "lost");
        assert_eq!(s.lost_reason.as_deref(), Some("crashed (signal 11)"));
        assert_eq!(t.epc.used(), 0);
        // Removing it later does not return the EPC twice.
        t.admit(new(1, 100), None).unwrap();
        t.remove(a).unwrap();
        assert_eq!(t.epc.used(), 100);
    }

    #[test]
    fn keeps_the_first_loss_reason() {
        let mut t = Table::new(100);
        let a = t.admit(new(1, 10), None).unwrap();
        t.enclaves.get_mut(&a).unwrap().state = State::Running;
        assert!(t.mark_lost(a, 4, "tracer attached (pid 7)"));
        t.process_ended(a, 2, "crashed (signal 9)");
        assert_eq!(
            t.enclaves[&a].status().lost_reason.as_deref(),
            Some("tracer attached (pid 7)")
        );
        assert_eq!(t.epc.used(), 0);
    }

    #[test]
    fn leaves_a_destroyed_enclave_to_its_destroyer() {
        let mut t = Table::new(100);
        let a = t.admit(new(1, 10), None).unwrap();
        t.enclaves.get_mut(&a).unwrap().state = State::Destroying;
        t.process_ended(a, 2, "crashed (signal 9)");
        assert_eq!(t.enclaves[&a].state, State::Destroying);
        assert_eq!(t.epc.used(), 10);
        t.remove(a);
        assert_eq!(t.epc.used(), 0);
    }

    #[test]
    fn keeps_each_uid_within_its_quota() {
        let mut t = Table::new(1000);
        let a = t.admit(new(1, 60), Some(100)).unwrap();
        assert_eq!(
            t.admit(new(2, 41), Some(100)),
            Err(AdmitError::Quota {
                in_use: 60,
                asked: 41,
                quota: 100
            })
        );
        let mut other = new(3, 100);
        other.owner_uid = 2000;
        t.admit(other, Some(100)).unwrap();
        t.remove(a);
        t.admit(new(1, 100), Some(100)).unwrap();
    }

    #[test]
    fn a_dropped_reservation_returns_its_slot_and_epc() {
        let table = Mutex::new(Table::new(100));
        let r = Reservation::new(&table, new(1, 60), None).unwrap();
        assert_eq!(lock(&table).epc.used(), 60);
        drop(r);
        assert_eq!(lock(&table).epc.used(), 0);
        assert!(lock(&table).enclaves.is_empty());
        let kept = Reservation::new(&table, new(1, 60), None).unwrap();
        let id = kept.id();
        kept.commit();
        assert_eq!(lock(&table).enclaves[&id].epc_bytes, 60);
        assert_eq!(lock(&table).epc.used(), 60);
    }

    #[test]
    fn refuses_more_than_the_enclave_cap() {
        let mut t = Table::new(u64::MAX);
        for _ in 0..MAX_ENCLAVES {
            t.admit(new(1, 1), None).unwrap();
        }
        assert_eq!(t.admit(new(1, 1), None), Err(AdmitError::TooMany));
    }
}
