//! The EPC budget: every enclave's committed size is charged against the node's capacity at
//! creation and returned at destruction or loss (DESIGN §4).
//!
//! The ledger has no lock of its own: the daemon keeps it inside its enclave table, so a charge
//! and the table entry it pays for appear together, and two concurrent creates can never both
//! take the last free bytes.

/// A request that does not fit. [`crate::daemon`] turns it into
/// `PlatformError::EpcExhausted` with the VM size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("EPC exhausted: {asked} bytes asked, {free} of {total} bytes free")]
pub struct EpcExhausted {
    pub asked: u64,
    pub free: u64,
    pub total: u64,
}

/// Used and total EPC bytes of the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpcLedger {
    total: u64,
    used: u64,
}

impl EpcLedger {
    pub fn new(total: u64) -> Self {
        EpcLedger { total, used: 0 }
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    pub fn used(&self) -> u64 {
        self.used
    }

    pub fn free(&self) -> u64 {
        self.total - self.used
    }

    /// Takes `asked` bytes, or nothing at all if they do not fit.
    pub fn charge(&mut self, asked: u64) -> Result<(), EpcExhausted> {
        if asked > self.free() {
            return Err(EpcExhausted {
                asked,
                free: self.free(),
                total: self.total,
            });
        }
        self.used += asked;
        Ok(())
    }

    /// Returns `bytes` charged earlier. Returning more than is used is an accounting bug; the
    /// ledger clamps at zero rather than wrap, and says so in the log.
    pub fn release(&mut self, bytes: u64) {
        if bytes > self.used {
            tracing::error!(
                bytes,
                used = self.used,
                "EPC release larger than the used amount"
            );
        }
        self.used = self.used.saturating_sub(bytes);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn accepts_charges_up_to_the_capacity_and_after_a_release() {
        let mut l = EpcLedger::new(28 * MIB);
        l.charge(20 * MIB).unwrap();
        l.charge(8 * MIB).unwrap();
        assert_eq!((l.used(), l.free()), (28 * MIB, 0));
        l.release(8 * MIB);
        l.charge(8 * MIB).unwrap();
        assert_eq!(l.free(), 0);
    }

    #[test]
    fn rejects_a_charge_that_does_not_fit_without_charging_anything() {
        let mut l = EpcLedger::new(28 * MIB);
        l.charge(20 * MIB).unwrap();
        let err = l.charge(9 * MIB).unwrap_err();
        assert_eq!(
            err,
            EpcExhausted {
                asked: 9 * MIB,
                free: 8 * MIB,
                total: 28 * MIB
            }
        );
        assert_eq!(l.used(), 20 * MIB);
        assert!(l.charge(u64::MAX).is_err());
        assert_eq!(l.used(), 20 * MIB);
    }

    #[test]
    fn never_overcommits_under_concurrent_charges() {
        let ledger = Arc::new(Mutex::new(EpcLedger::new(28 * MIB)));
        let granted: Vec<bool> = (0..16)
            .map(|_| {
                let ledger = Arc::clone(&ledger);
                std::thread::spawn(move || ledger.lock().unwrap().charge(4 * MIB).is_ok())
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect();
        assert_eq!(granted.iter().filter(|g| **g).count(), 7);
        assert_eq!(ledger.lock().unwrap().used(), 28 * MIB);
    }

    #[test]
    fn release_clamps_at_zero() {
        let mut l = EpcLedger::new(MIB);
        l.charge(10).unwrap();
        l.release(20);
        assert_eq!(l.used(), 0);
    }
}
