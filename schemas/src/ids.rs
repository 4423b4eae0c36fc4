//! Identifier newtypes, so that a job id is never passed where a problem id is expected.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps a string; callers that read ids from outside validate them first.
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The id as an owned string.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }
    };
}

id_type!(
    /// A problem; unique within a job.
    ProblemId
);

/// A work unit: `{job}.u{index:05}`. Also the stem of its shards, so job ids are checked to be
/// safe file names before units are made of them. Built here and parsed here only: the
/// coordinator recovers the job of a report from it, the worker names shards after it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UnitId {
    text: String,
    job_len: usize,
    index: usize,
}

/// An id that does not have the shape its type requires.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed {kind} id {text:?}: expected {shape}")]
pub struct MalformedId {
    /// Which kind of id.
    pub kind: &'static str,
    /// The text given.
    pub text: String,
    /// The shape expected.
    pub shape: &'static str,
}

impl UnitId {
    const SHAPE: &'static str = "{job}.u{index}";

    /// Unit `index` of job `job_id`.
    pub fn new(job_id: &str, index: usize) -> Self {
        Self {
            text: format!("{job_id}.u{index:05}"),
            job_len: job_id.len(),
            index,
        }
    }

    /// Reads a unit id from the wire.
    pub fn parse(text: &str) -> Result<Self, MalformedId> {
        let bad = || MalformedId {
            kind: "unit",
            text: text.to_string(),
            shape: Self::SHAPE,
        };
        let (job, index) = text.rsplit_once(".u").ok_or_else(bad)?;
        if job.is_empty() || index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        Ok(Self {
            text: text.to_string(),
            job_len: job.len(),
            index: index.parse().map_err(|_| bad())?,
        })
    }

    /// The job the unit belongs to.
    pub fn job_id(&self) -> &str {
        &self.text[..self.job_len]
    }

    /// The unit's position in its job.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The shard a worker writes for this unit under lease attempt `attempt`: attempts never
    /// share a file, so a late worker's shard can never replace the one the manifest records.
    pub fn shard_stem(&self, attempt: u32) -> String {
        format!("{}.a{attempt}", self.text)
    }
}

impl fmt::Display for UnitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A lease of a unit: `{unit}~{attempt}~{nonce}`. The attempt numbers the unit's leases from 0
/// (it names the shard); the nonce, hex, tells two coordinators' leases apart. The Redis
/// store's `lease.lua` builds the same text inside its script (it alone knows the attempt
/// there); the store suite parses what both stores hand out with [`LeaseId::parse`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LeaseId {
    unit: UnitId,
    attempt: u32,
    nonce: String,
}

impl LeaseId {
    const SHAPE: &'static str = "{unit}~{attempt}~{hex nonce}";

    /// Lease `attempt` of `unit`.
    pub fn new(unit: UnitId, attempt: u32, nonce: u32) -> Self {
        Self {
            unit,
            attempt,
            nonce: format!("{nonce:08x}"),
        }
    }

    /// Reads a lease id from the wire.
    pub fn parse(text: &str) -> Result<Self, MalformedId> {
        let bad = || MalformedId {
            kind: "lease",
            text: text.to_string(),
            shape: Self::SHAPE,
        };
        let mut parts = text.rsplitn(3, '~');
        let nonce = parts.next().ok_or_else(bad)?;
        let attempt = parts.next().ok_or_else(bad)?;
        let unit = parts.next().ok_or_else(bad)?;
        if nonce.is_empty() || !nonce.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        Ok(Self {
            unit: UnitId::parse(unit).map_err(|_| bad())?,
            attempt: attempt.parse().map_err(|_| bad())?,
            nonce: nonce.to_string(),
        })
    }

    /// The leased unit.
    pub fn unit(&self) -> &UnitId {
        &self.unit
    }

    /// Which lease of the unit this is, from 0.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }
}

impl fmt::Display for LeaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}~{}~{}", self.unit, self.attempt, self.nonce)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_ids_round_trip_and_name_their_job() {
        let u = UnitId::new("20261201-ab.c", 7);
        assert_eq!(u.as_str(), "20261201-ab.c.u00007");
        let back = UnitId::parse(u.as_str()).unwrap();
        assert_eq!((back.job_id(), back.index()), ("20261201-ab.c", 7));
        assert_eq!(back.shard_stem(2), "20261201-ab.c.u00007.a2");
        // A job id that itself holds ".u" still parses from the right.
        assert_eq!(UnitId::parse("a.ub.u00001").unwrap().job_id(), "a.ub");
        for bad in ["", "job", "job.u", ".u00001", "job.u1x", "job.x00001"] {
            assert!(UnitId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn lease_ids_round_trip_and_refuse_other_shapes() {
        let l = LeaseId::new(UnitId::new("j", 3), 2, 0xbeef);
        assert_eq!(l.to_string(), "j.u00003~2~0000beef");
        let back = LeaseId::parse(&l.to_string()).unwrap();
        assert_eq!(back, l);
        assert_eq!((back.unit().job_id(), back.attempt()), ("j", 2));
        let err = LeaseId::parse("j.u00003~x~00").unwrap_err();
        assert!(err.to_string().contains("malformed lease id"), "{err}");
        for bad in [
            "",
            "j.u00003",
            "j.u00003~1",
            "j.u00003~1~",
            "j~1~00",
            "j.u00003~1~zz",
        ] {
            assert!(LeaseId::parse(bad).is_err(), "{bad:?}");
        }
    }
}
