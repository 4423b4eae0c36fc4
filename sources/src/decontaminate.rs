//! Decontamination and de-duplication of a problem set, streamed problem by problem.
//!
//! A problem is **contaminated** when it overlaps an evaluation item: it shares a word
//! n-gram (13 by default, the window of the GPT-3 and Tülu 3 reports) with it, or, for texts
//! too short to have one, its normalised question and its answer equal the item's. The whole
//! evaluation set is indexed (a few thousand items); the problems stream past it.
//!
//! A problem is a **near-duplicate** of an earlier kept one when most of its n-grams (half by
//! default) are that one's, or when its normalised question is the same: the same AIME problem
//! in MATH and in NuminaMath, say. The first one seen is kept, so the order of the inputs is the
//! order of preference. To bound memory on large sets only a fixed quarter of n-gram hashes
//! (those whose hash is 0 mod 4) are indexed for this, which estimates the shared fraction
//! without bias; questions too short for a sampled n-gram fall back to the exact match.

use crate::text::{hash_words, ngrams, words};
use serde::Serialize;
use start_schemas::problem::{Problem, Target};
use std::collections::HashMap;

/// How overlap is measured.
#[derive(Clone, Debug)]
pub struct Options {
    /// Words per n-gram.
    pub ngram: usize,
    /// Share of a problem's (sampled) n-grams that an earlier problem must hold for it to be a
    /// near-duplicate; above 1 turns de-duplication off.
    pub duplicate_overlap: f64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            ngram: 13,
            duplicate_overlap: 0.5,
        }
    }
}

/// How a problem matched.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum How {
    /// It shares this many n-grams with the other text.
    Ngrams {
        /// n-grams shared (sampled ones, for duplicates).
        shared: usize,
        /// n-grams the problem has (sampled ones, for duplicates).
        of: usize,
    },
    /// Its normalised question is the other's.
    SameQuestion,
    /// Too short for an n-gram: its normalised question and answer are the other's.
    SameQuestionAndAnswer,
}

/// One problem removed, with what it matched.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Removal {
    /// `contaminated` or `duplicate`.
    pub reason: &'static str,
    /// The removed problem.
    pub id: String,
    /// Its source.
    pub source: String,
    /// The evaluation item or the kept problem it matched.
    pub matched_id: String,
    /// That one's source.
    pub matched_source: String,
    /// How.
    pub how: How,
}

/// A problem's answer in a comparable form, when it has one.
fn answer_key(p: &Problem) -> Option<String> {
    match &p.target {
        Target::Math { answer, .. } => Some(words(answer).join(" ")),
        Target::Choice {
            choices,
            answer_index,
        } => choices.get(*answer_index).map(|c| words(c).join(" ")),
        Target::Code { .. } | Target::Judge => None,
    }
}

/// The evaluation items, indexed by n-gram and by whole question.
pub struct EvalIndex {
    options: Options,
    items: Vec<(String, String, Option<String>)>,
    grams: HashMap<u64, u32>,
    questions: HashMap<u64, u32>,
}

impl EvalIndex {
    /// An empty index.
    pub fn new(options: Options) -> Self {
        Self {
            options,
            items: Vec::new(),
            grams: HashMap::new(),
            questions: HashMap::new(),
        }
    }

    /// Items indexed.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Adds one evaluation item.
    pub fn add(&mut self, item: &Problem) {
        let index = self.items.len() as u32;
        self.items.push((
            item.id.as_str().to_string(),
            item.source.clone(),
            answer_key(item),
        ));
        let w = words(&item.question);
        self.questions.entry(hash_words(&w)).or_insert(index);
        for g in ngrams(&w, self.options.ngram) {
            self.grams.entry(g).or_insert(index);
        }
    }

    /// The first evaluation item `problem` overlaps, with how.
    pub fn find(&self, problem: &Problem) -> Option<(usize, How)> {
        self.find_words(problem, &words(&problem.question))
    }

    /// [`Self::find`] with the question's words already split.
    fn find_words(&self, problem: &Problem, w: &[String]) -> Option<(usize, How)> {
        if w.len() < self.options.ngram {
            let &i = self.questions.get(&hash_words(w))?;
            let same_answer = match (&self.items[i as usize].2, answer_key(problem)) {
                (Some(a), Some(b)) => *a == b,
                _ => true,
            };
            return same_answer.then_some((i as usize, How::SameQuestionAndAnswer));
        }
        if let Some(&i) = self.questions.get(&hash_words(w)) {
            return Some((i as usize, How::SameQuestion));
        }
        let mut first = None;
        let (mut shared, mut of) = (0, 0);
        for g in ngrams(w, self.options.ngram) {
            of += 1;
            if let Some(&i) = self.grams.get(&g) {
                first.get_or_insert(i);
                if first == Some(i) {
                    shared += 1;
                }
            }
        }
        first.map(|i| (i as usize, How::Ngrams { shared, of }))
    }
}

/// Decides, problem by problem, what to keep.
pub struct Decontaminator {
    eval: EvalIndex,
    kept: Vec<(String, String)>,
    grams: HashMap<u64, u32>,
    questions: HashMap<u64, u32>,
}

/// Whether a hash is in the fixed sample indexed for de-duplication.
fn sampled(h: &u64) -> bool {
    h.is_multiple_of(4)
}

impl Decontaminator {
    /// Against the evaluation items in `eval`.
    pub fn new(eval: EvalIndex) -> Self {
        Self {
            eval,
            kept: Vec::new(),
            grams: HashMap::new(),
            questions: HashMap::new(),
        }
    }

    /// `None` when `problem` is kept (and remembered for later duplicates), else why not.
    pub fn check(&mut self, problem: &Problem) -> Option<Removal> {
        let removal = |reason, (id, source): &(String, String), how| Removal {
            reason,
            id: problem.id.as_str().to_string(),
            source: problem.source.clone(),
            matched_id: id.clone(),
            matched_source: source.clone(),
            how,
        };
        let w = words(&problem.question);
        if let Some((i, how)) = self.eval.find_words(problem, &w) {
            let (id, source, _) = &self.eval.items[i];
            return Some(removal("contaminated", &(id.clone(), source.clone()), how));
        }
        let whole = hash_words(&w);
        if let Some(&i) = self.questions.get(&whole) {
            return Some(removal(
                "duplicate",
                &self.kept[i as usize],
                How::SameQuestion,
            ));
        }
        let grams: Vec<u64> = ngrams(&w, self.eval.options.ngram)
            .filter(sampled)
            .collect();
        if !grams.is_empty() {
            let mut hits: HashMap<u32, usize> = HashMap::new();
            for g in &grams {
                if let Some(&i) = self.grams.get(g) {
                    *hits.entry(i).or_default() += 1;
                }
            }
            if let Some((&i, &shared)) = hits
                .iter()
                .max_by_key(|(i, n)| (**n, std::cmp::Reverse(**i)))
            {
                if shared as f64 >= self.eval.options.duplicate_overlap * grams.len() as f64 {
                    return Some(removal(
                        "duplicate",
                        &self.kept[i as usize],
                        How::Ngrams {
                            shared,
                            of: grams.len(),
                        },
                    ));
                }
            }
        }
        let index = self.kept.len() as u32;
        self.kept
            .push((problem.id.as_str().to_string(), problem.source.clone()));
        self.questions.insert(whole, index);
        for g in grams {
            self.grams.entry(g).or_insert(index);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use start_schemas::rows::Location;
    use start_schemas::validate::check_row;

    fn math(id: &str, source: &str, question: &str, answer: &str) -> Problem {
        check_row(
            &json!({"id": id, "source": source, "kind": "math", "question": question, "answer": answer}),
            &Location::file("t"),
        )
        .unwrap()
    }

    const AIME: &str = "Let $N$ be the greatest four-digit positive integer with the property that whenever one of its digits is changed to $1$, the resulting number is divisible by $7$. Find $N$ modulo $1000$.";

    #[test]
    fn a_shared_13_gram_or_a_short_exact_match_is_contamination() {
        let mut eval = EvalIndex::new(Options::default());
        eval.add(&math("aime-2024-I-8", "aime", AIME, "699"));
        eval.add(&math("m500-1", "math", "Compute $1+1$.", "2"));
        let mut d = Decontaminator::new(eval);
        let reworded = format!(
            "Problem 8. {} Give only the number.",
            AIME.replace("$N$ be", "N be")
        );
        let r = d
            .check(&math("numina-1", "numina-olympiads", &reworded, "699"))
            .unwrap();
        assert_eq!(
            (r.reason, r.matched_id.as_str()),
            ("contaminated", "aime-2024-I-8")
        );
        assert!(
            matches!(r.how, How::Ngrams { shared, .. } if shared > 5),
            "{r:?}"
        );
        let r = d
            .check(&math("x", "numina-cn_k12", "compute 1 + 1", "2"))
            .unwrap();
        assert_eq!(r.how, How::SameQuestionAndAnswer);
        assert!(
            d.check(&math("y", "numina-cn_k12", "compute 1 + 1", "3"))
                .is_none(),
            "another answer, another problem"
        );
        assert!(d.check(&math("z", "math", "Find the number of primes below 100 that are one more than a square of an integer.", "4")).is_none());
    }

    #[test]
    fn near_duplicates_across_sources_keep_the_first_seen() {
        let mut d = Decontaminator::new(EvalIndex::new(Options::default()));
        let q = "A box holds red, blue and green marbles in the ratio 3 to 4 to 5, and there are 24 more green marbles than red marbles in the box. How many marbles are there in the box altogether?";
        assert!(d.check(&math("math-1", "math", q, "144")).is_none());
        let again = q.replace(
            "altogether?",
            "altogether? Express your answer as an integer.",
        );
        let r = d
            .check(&math("numina-2", "numina-amc_aime", &again, "144"))
            .unwrap();
        assert_eq!((r.reason, r.matched_id.as_str()), ("duplicate", "math-1"));
        let r = d
            .check(&math(
                "numina-3",
                "numina-olympiads",
                &q.to_uppercase(),
                "144",
            ))
            .unwrap();
        assert_eq!(r.how, How::SameQuestion);
    }
}
