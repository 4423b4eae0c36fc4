//! Leases: a worker holds a unit for a time-to-live, extends it with every poll, and loses it
//! when it stops. This module owns the request a store serves, the nonces that tell leases
//! apart and the rule for the lease clock.
//!
//! The lease clock is the store's, never a coordinator's. The Redis store reads `TIME` inside
//! each script, so coordinators whose wall clocks disagree (an hour of NTP drift on one node)
//! still agree on when a lease ends and never revoke a live one (`tests/clock.rs` runs one
//! coordinator an hour ahead). The in-process store has one process and reads its clock.
//!
//! The id format itself is [`start_schemas::LeaseId`]: the worker and the coordinator share it.

use start_schemas::{LeaseId, UnitId};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A lease request.
#[derive(Clone, Debug)]
pub struct LeaseRequest {
    /// The caller.
    pub worker_id: String,
    /// Most units to hand out; 0 only sweeps expired leases back into the queue.
    pub max_units: u32,
    /// Lease length.
    pub ttl: Duration,
}

/// Unix time in milliseconds on this machine: the in-process store's lease clock, and the
/// time stamps a coordinator writes for humans (job creation).
pub fn wall_clock_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Lease nonces: unique within a store's life and, from a random start, across coordinators
/// and restarts, so a lease id handed out twice for the same unit and attempt still differs.
pub struct Nonces(AtomicU64);

impl Nonces {
    /// A sequence that starts at a random point.
    pub fn random() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ (u64::from(std::process::id()) << 32);
        Self(AtomicU64::new(start_schemas::problem::splitmix64(&mut {
            seed
        })))
    }

    /// The next nonce.
    pub fn next(&self) -> u32 {
        let mut n = self.0.fetch_add(1, Ordering::Relaxed);
        start_schemas::problem::splitmix64(&mut n) as u32
    }

    /// The next nonce as the id's hex text (what the Redis script appends).
    pub fn next_hex(&self) -> String {
        format!("{:08x}", self.next())
    }

    /// A new lease of `unit`.
    pub fn lease(&self, unit: UnitId, attempt: u32) -> LeaseId {
        LeaseId::new(unit, attempt, self.next())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_differ_and_leases_parse_back() {
        let n = Nonces::random();
        let a = n.lease(UnitId::new("j", 0), 0);
        let b = n.lease(UnitId::new("j", 0), 0);
        assert_ne!(a, b);
        assert_eq!(LeaseId::parse(&a.to_string()).unwrap(), a);
        assert_eq!(n.next_hex().len(), 8);
    }
}
