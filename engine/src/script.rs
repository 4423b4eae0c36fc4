//! Scripted openings, for tests only (the feature `scripted`, which the engine's own tests and
//! bench turn on): what a request's model "writes" first, by the request's seed. Its tokens
//! take exactly the path of sampled tokens (fences, trigger words, the end of thinking,
//! limits), so that a test can put a code block or a trigger word where it needs one; the
//! tokens after it are the model's own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Openings waiting for the next request of their seed; clone it to add openings while the
/// engine runs.
#[derive(Clone, Default)]
pub struct Script {
    openings: Arc<Mutex<HashMap<u64, String>>>,
}

impl Script {
    /// The next request with `seed` opens with `text`.
    pub fn open(&self, seed: u64, text: &str) {
        self.openings
            .lock()
            .expect("script lock")
            .insert(seed, text.to_string());
    }

    /// The opening for a request of `seed`, used once.
    pub(crate) fn take(&self, seed: u64) -> Option<String> {
        self.openings.lock().expect("script lock").remove(&seed)
    }
}
