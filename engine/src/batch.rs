//! Planning one decode step: how many of its queued tokens each slot feeds, and which slots
//! with nothing to feed get a throwaway token to keep the batch in one piece. Pure: it sees
//! only queue lengths and which slots could take a pad, so it is tested without a model.
//!
//! With one KV stream per slot, llama.cpp cuts a batch into ubatches of consecutive sequence
//! ids, each a full pass over the weights: a slot out of order, or one with nothing to feed
//! between two that have, starts another ubatch. So the batch is laid out in slot order, and
//! short gaps are padded where that is cheaper than the split (`pad_gaps`).

/// What a slot can put into the step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Load {
    /// Tokens it has queued (0: nothing to feed: idle, or waiting on the sandbox).
    pub queued: usize,
    /// Whether it could take a throwaway token (idle or waiting, with room in its stream).
    pub can_pad: bool,
}

/// The step's plan.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Tokens each slot feeds, by slot.
    pub takes: Vec<usize>,
    /// Slots that get a throwaway token, in slot order.
    pub pads: Vec<usize>,
}

impl Plan {
    /// Tokens fed, pads not counted.
    pub fn fed(&self) -> usize {
        self.takes.iter().sum()
    }
}

/// Plans a step of at most `budget` tokens. Slots with the least to feed (generating slots:
/// one token) get their share first, and prefill chunks share what is left. A run of at most
/// `pad_gaps` slots with nothing to feed, between slots that feed, is padded when every slot of
/// it can take a pad and the budget has room.
pub(crate) fn plan(loads: &[Load], budget: usize, pad_gaps: usize) -> Plan {
    let mut order: Vec<usize> = (0..loads.len()).filter(|&i| loads[i].queued > 0).collect();
    order.sort_by_key(|&i| loads[i].queued);
    let mut takes = vec![0usize; loads.len()];
    let mut used = 0usize;
    for &i in &order {
        takes[i] = loads[i].queued.min(budget - used);
        used += takes[i];
    }
    let mut pads = Vec::new();
    let feeds = |&t: &usize| t > 0;
    if let (Some(lo), Some(hi)) = (takes.iter().position(feeds), takes.iter().rposition(feeds)) {
        let mut run: Vec<usize> = Vec::new();
        for (i, &take) in takes.iter().enumerate().take(hi + 1).skip(lo) {
            if take == 0 {
                run.push(i);
                continue;
            }
            let fits = !run.is_empty()
                && run.len() <= pad_gaps
                && used + pads.len() + run.len() <= budget
                && run.iter().all(|&g| loads[g].can_pad);
            if fits {
                pads.extend(run.iter().copied());
            }
            run.clear();
        }
    }
    Plan { takes, pads }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(queued: usize) -> Load {
        Load {
            queued,
            can_pad: true,
        }
    }

    #[test]
    fn generating_slots_go_first_and_prefill_shares_the_rest() {
        let p = plan(&[load(1), load(300), load(1), load(300)], 256, 1);
        assert_eq!(p.takes[0], 1);
        assert_eq!(p.takes[2], 1);
        assert_eq!(p.takes[1] + p.takes[3], 254);
        assert_eq!(p.fed(), 256);
    }

    #[test]
    fn single_gaps_between_feeding_slots_are_padded_and_wider_or_edge_gaps_are_not() {
        let p = plan(
            &[
                load(1),
                load(0),
                load(1),
                load(0),
                load(0),
                load(1),
                load(0),
            ],
            64,
            1,
        );
        assert_eq!(
            p.pads,
            [1],
            "the single gap, not the double one nor the edge"
        );
        let p = plan(
            &[load(1), load(0), load(1), load(0), load(0), load(1)],
            64,
            2,
        );
        assert_eq!(p.pads, [1, 3, 4]);
        let p = plan(&[load(0), load(1), load(1), load(0)], 64, 4);
        assert!(p.pads.is_empty(), "edges never split a batch");
        let p = plan(&[load(1), load(0), load(1)], 64, 0);
        assert!(p.pads.is_empty(), "padding off");
    }

    #[test]
    fn a_gap_that_cannot_take_a_pad_or_a_full_budget_is_left() {
        let full = Load {
            queued: 0,
            can_pad: false,
        };
        assert!(plan(&[load(1), full, load(1)], 64, 1).pads.is_empty());
        // Two tokens fill the budget: no room for a pad.
        assert!(plan(&[load(1), load(0), load(1)], 2, 1).pads.is_empty());
        assert_eq!(plan(&[load(1), load(0), load(1)], 3, 1).pads, [1]);
    }
}
