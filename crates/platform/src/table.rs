//! The enclave table: every enclave of the node, its owner, its state and its EPC charge, with the
//! EPC ledger under the same lock.

use std::collections::BTreeMap;
use std::sync::Arc;

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
    TooMany,
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

    /// Charges the EPC and adds a `Starting` entry, both or neither. Returns the new id.
    pub fn admit(&mut self, new: NewEntry) -> Result<u64, AdmitError> {
        if self.enclaves.len() >= MAX_ENCLAVES {
            return Err(AdmitError::TooMany);
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
        let a = t.admit(new(1, 60)).unwrap();
        assert_eq!(t.epc.used(), 60);
        assert_eq!(
            t.admit(new(1, 41)),
            Err(AdmitError::Epc(EpcExhausted {
                asked: 41,
                free: 40,
                total: 100
            }))
        );
        assert_eq!(t.enclaves.len(), 1, "no partial enclave");
        t.remove(a).unwrap();
        assert_eq!(t.epc.used(), 0);
        t.admit(new(1, 100)).unwrap();
    }

    #[test]
    fn keeps_a_lost_enclave_listed_with_its_epc_returned() {
        let mut t = Table::new(100);
        let a = t.admit(new(1, 60)).unwrap();
        t.enclaves.get_mut(&a).unwrap().state = State::Running;
        t.process_ended(a, 2, "crashed (signal 11)");
        let s = t.enclaves[&a].status();
        assert_eq!(s.state, "lost");
        assert_eq!(s.lost_reason.as_deref(), Some("crashed (signal 11)"));
        assert_eq!(t.epc.used(), 0);
        // Removing it later does not return the EPC twice.
        t.admit(new(1, 100)).unwrap();
        t.remove(a).unwrap();
        assert_eq!(t.epc.used(), 100);
    }

    #[test]
    fn keeps_the_first_loss_reason() {
        let mut t = Table::new(100);
        let a = t.admit(new(1, 10)).unwrap();
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
        let a = t.admit(new(1, 10)).unwrap();
        t.enclaves.get_mut(&a).unwrap().state = State::Destroying;
        t.process_ended(a, 2, "crashed (signal 9)");
        assert_eq!(t.enclaves[&a].state, State::Destroying);
        assert_eq!(t.epc.used(), 10);
        t.remove(a);
        assert_eq!(t.epc.used(), 0);
    }

    #[test]
    fn refuses_more_than_the_enclave_cap() {
        let mut t = Table::new(u64::MAX);
        for _ in 0..MAX_ENCLAVES {
            t.admit(new(1, 1)).unwrap();
        }
        assert_eq!(t.admit(new(1, 1)), Err(AdmitError::TooMany));
    }
}
