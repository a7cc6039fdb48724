//! What every thread of the daemon shares: the configuration, the CPU services, the enclave
//! table and the counters that bound clients and admissions. Both the client threads
//! ([`crate::daemon`]) and the enclave supervisors ([`crate::supervisor`]) use it; it uses
//! neither.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Condvar, Mutex, MutexGuard};

use crate::config::PlatformConfig;
use crate::services::CpuServices;
use crate::table::{Table, lock};

/// State every thread of the daemon shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: PlatformConfig,
    pub(crate) services: CpuServices,
    pub(crate) table: Mutex<Table>,
    /// Whether the daemon runs as root (enclaves then get uids of their own).
    pub(crate) root: bool,
    pub(crate) keep_ipc_lock: bool,
    pub(crate) clients: AtomicUsize,
    /// Open connections per uid, for `max_connections_per_uid`.
    pub(crate) connections: Mutex<HashMap<u32, u32>>,
    pub(crate) next_conn: AtomicU64,
    pub(crate) admissions: Gate,
}

impl Shared {
    /// The enclave table. A thread that panicked while holding it cannot have left it half
    /// changed (every change is a single insert, remove or field store), so a poisoned lock is
    /// taken over rather than taking the daemon down.
    pub(crate) fn table(&self) -> MutexGuard<'_, Table> {
        lock(&self.table)
    }

    /// Counts a new connection of `uid`: `Err(limit)` when the uid already holds the most
    /// connections it may (root is never limited). Each `Ok` is matched by one
    /// [`Shared::disconnected`].
    pub(crate) fn connected(&self, uid: u32) -> Result<(), u32> {
        let mut c = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        let n = c.entry(uid).or_insert(0);
        if let Some(limit) = self.config.max_connections_per_uid
            && uid != 0
            && *n >= limit
        {
            return Err(limit);
        }
        *n += 1;
        Ok(())
    }

    /// A connection of `uid` counted by [`Shared::connected`] has closed.
    pub(crate) fn disconnected(&self, uid: u32) {
        let mut c = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = c.get_mut(&uid) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.remove(&uid);
            }
        }
    }
}

/// A counting gate: at most `limit` holders at once.
#[derive(Debug)]
pub(crate) struct Gate {
    inside: Mutex<usize>,
    freed: Condvar,
    limit: usize,
}

/// A place in a [`Gate`], given back on drop.
#[derive(Debug)]
pub(crate) struct Pass<'a>(&'a Gate);

impl Gate {
    pub(crate) fn new(limit: usize) -> Self {
        Gate {
            inside: Mutex::new(0),
            freed: Condvar::new(),
            limit,
        }
    }

    pub(crate) fn enter(&self) -> Pass<'_> {
        let mut inside = self.inside.lock().unwrap_or_else(|e| e.into_inner());
        while *inside >= self.limit {
            inside = self.freed.wait(inside).unwrap_or_else(|e| e.into_inner());
        }
        *inside += 1;
        Pass(self)
    }
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        let mut inside = self.0.inside.lock().unwrap_or_else(|e| e.into_inner());
        *inside = inside.saturating_sub(1);
        self.0.freed.notify_one();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_admission_gate_lets_in_at_most_its_limit() {
        let gate = Arc::new(Gate::new(2));
        let inside = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (gate, inside, most) = (gate.clone(), inside.clone(), most.clone());
                std::thread::spawn(move || {
                    let _pass = gate.enter();
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(10));
                    inside.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let most = most.load(Ordering::SeqCst);
        assert!((1..=2).contains(&most), "{most} inside at once");
        assert_eq!(*gate.inside.lock().unwrap(), 0);
    }
}
