//! Units: what one worker leases and commits as one shard. A job's problems are split into
//! units when it is submitted; each unit's id ([`start_schemas::UnitId`], `{job}.u{index}`)
//! names its job and, with the lease's attempt, its shard.

use start_schemas::problem::Problem;
use start_schemas::{proto, UnitId};

/// A job ready to be stored: its spec and its problems already split into units.
#[derive(Clone, Debug)]
pub struct NewJob {
    /// The job id.
    pub job_id: String,
    /// The validated spec.
    pub spec: proto::JobSpec,
    /// Each unit's problems, in order; unit `i` gets id [`NewJob::unit_id`]`(i)`.
    pub units: Vec<proto::ProblemBatch>,
    /// Submission time, Unix ms (for listing; leases run on the store's clock).
    pub created_at_ms: i64,
}

impl NewJob {
    /// Problems over every unit.
    pub fn problems(&self) -> u64 {
        self.units.iter().map(|u| u.problems.len() as u64).sum()
    }

    /// The id of unit `index`.
    pub fn unit_id(&self, index: usize) -> UnitId {
        UnitId::new(&self.job_id, index)
    }
}

/// Splits problems into units of `unit_size`, in order.
pub fn split_units(problems: &[Problem], unit_size: u32) -> Vec<proto::ProblemBatch> {
    problems
        .chunks(unit_size.max(1) as usize)
        .map(|chunk| proto::ProblemBatch {
            problems: chunk.iter().map(proto::Problem::from).collect(),
        })
        .collect()
}
