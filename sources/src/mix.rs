//! The mix: a problem set drawn from several imported files by counts or shares per kind or
//! source (START's was 40k math and 10k code), reproducibly from a seed, with a recipe that
//! records the inputs by sha256 so that the same mix can be rebuilt and a changed input is
//! caught.
//!
//! Each problem goes to the first take whose selector it matches; each take keeps a uniform
//! sample of its problems (reservoir sampling, so only the sample is held, never the inputs),
//! and the output lists every take's sample in input order. Asking for more than the inputs
//! hold is an error, not a smaller mix.
//!
//! A mix can instead be weighted: each problem drawn with a probability proportional to a
//! weight, e.g. how much tools help on it ([`usefulness`]: pass@k with tools minus without,
//! from a plain and a hinted run of the same problems, the 2026 recipe's choice of problems
//! "where tools help"). The weighted draw is Efraimidis and Spirakis' A-Res, again a reservoir:
//! each problem gets the key `ln(u) / w` from the take's stream and the take keeps the largest
//! keys. A problem of weight 0 is never drawn and is not counted as available.

use serde::{Deserialize, Serialize};
use start_schemas::problem::{splitmix64, Problem, ProblemKind};
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::fmt;
use std::str::FromStr;

/// Which problems a take draws from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Selector {
    /// Every problem of a kind (`math`, `kind:code`).
    Kind(ProblemKind),
    /// Every problem of a source tag (`source:numina-olympiads`).
    Source(String),
    /// Every problem (`all`).
    All,
}

impl Selector {
    /// Whether `p` is selected.
    pub fn matches(&self, p: &Problem) -> bool {
        match self {
            Self::Kind(k) => p.kind() == *k,
            Self::Source(s) => p.source == *s,
            Self::All => true,
        }
    }
}

impl FromStr for Selector {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s == "all" {
            return Ok(Self::All);
        }
        if let Some(source) = s.strip_prefix("source:") {
            return Ok(Self::Source(source.to_string()));
        }
        let kind = s.strip_prefix("kind:").unwrap_or(s);
        kind.parse::<ProblemKind>().map(Self::Kind).map_err(|_| {
            format!("{s:?} is not a selector: use a kind (math, choice, code), source:NAME or all")
        })
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Kind(k) => write!(f, "kind:{}", k.as_str()),
            Self::Source(s) => write!(f, "source:{s}"),
            Self::All => f.write_str("all"),
        }
    }
}

impl From<Selector> for String {
    fn from(s: Selector) -> String {
        s.to_string()
    }
}

impl TryFrom<String> for Selector {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

/// How many a take asks for.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Amount {
    /// A number of problems.
    Count(u64),
    /// A share of the mix's total, in percent.
    Percent(f64),
}

/// One part of the mix: `SELECTOR=AMOUNT`, e.g. `math=40000`, `code=20%`,
/// `source:aime=900`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Take {
    /// Which problems.
    pub select: Selector,
    /// How many.
    pub amount: Amount,
}

impl FromStr for Take {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (sel, amount) = s
            .rsplit_once('=')
            .ok_or_else(|| format!("{s:?} is not SELECTOR=AMOUNT (e.g. math=40000, code=20%)"))?;
        let amount = match amount.strip_suffix('%') {
            Some(p) => match p.trim().parse::<f64>() {
                Ok(p) if p > 0.0 && p <= 100.0 => Amount::Percent(p),
                _ => return Err(format!("{amount:?} is not a share in (0, 100]%")),
            },
            None => Amount::Count(
                amount
                    .trim()
                    .parse()
                    .map_err(|_| format!("{amount:?} is not a count or a percentage"))?,
            ),
        };
        Ok(Self {
            select: sel.trim().parse()?,
            amount,
        })
    }
}

/// A draw from the mix's seed: start's `splitmix64`, whose stream is fixed by its seed on
/// every platform and version, which is what a recipe needs.
#[derive(Clone, Debug)]
struct Draw(u64);

impl Draw {
    /// Uniform in `0..n` (n > 0), by the multiply-shift reduction (no modulo bias worth the
    /// name for n far below 2^64).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(splitmix64(&mut self.0)) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in the open interval (0, 1): 53 bits, offset by half a step so that its
    /// logarithm is finite.
    fn open_unit(&mut self) -> f64 {
        ((splitmix64(&mut self.0) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
}

/// A problem in a weighted take's reservoir, ordered by its key (then by input position, so
/// equal keys still order the same way every time).
struct Keyed {
    key: f64,
    position: u64,
    problem: Problem,
}

impl PartialEq for Keyed {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Keyed {}

impl PartialOrd for Keyed {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Keyed {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key
            .total_cmp(&other.key)
            .then(other.position.cmp(&self.position))
    }
}

/// Why a mix cannot be drawn.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MixError {
    /// Shares need a total to be shares of.
    #[error("{0} asks for a share, so the mix needs --total")]
    ShareWithoutTotal(String),
    /// The inputs hold fewer problems than a take asks for.
    #[error("{select} asks for {asked} problems but the inputs hold {available}{}", weightless_note(*weightless))]
    Short {
        /// The take.
        select: String,
        /// What it asked.
        asked: u64,
        /// What there was (of a weighted mix: of weight above 0).
        available: u64,
        /// Of a weighted mix: the take's problems of weight 0.
        weightless: u64,
    },
}

fn weightless_note(weightless: u64) -> String {
    if weightless == 0 {
        String::new()
    } else {
        format!(" of weight above 0 ({weightless} more have weight 0)")
    }
}

/// One take's outcome, for the recipe.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TakeOutcome {
    /// The selector.
    pub select: Selector,
    /// Problems asked for.
    pub asked: u64,
    /// Problems the inputs held for it (of a weighted mix: of weight above 0).
    pub available: u64,
    /// Of a weighted mix: problems the take's selector matched whose weight was 0 (never drawn).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub weightless: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Draws the mix while problems stream past.
pub struct Mixer {
    takes: Vec<(Selector, u64)>,
    rng: Vec<Draw>,
    seen: Vec<u64>,
    weightless: Vec<u64>,
    /// Per take: (position in the input, problem).
    samples: Vec<Vec<(u64, Problem)>>,
    /// Per take of a weighted mix: the reservoir, smallest key on top.
    keyed: Vec<BinaryHeap<Reverse<Keyed>>>,
    position: u64,
}

impl Mixer {
    /// A mixer for `takes`, shares resolved against `total`, drawing from `seed`.
    pub fn new(takes: &[Take], total: Option<u64>, seed: u64) -> Result<Self, MixError> {
        let counts = takes
            .iter()
            .map(|t| match (t.amount, total) {
                (Amount::Count(n), _) => Ok((t.select.clone(), n)),
                (Amount::Percent(p), Some(total)) => {
                    Ok((t.select.clone(), (total as f64 * p / 100.0).round() as u64))
                }
                (Amount::Percent(_), None) => {
                    Err(MixError::ShareWithoutTotal(t.select.to_string()))
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let n = counts.len();
        Ok(Self {
            rng: (0..n as u64)
                .map(|i| Draw(seed ^ i.wrapping_mul(0xa076_1d64_78bd_642f)))
                .collect(),
            takes: counts,
            seen: vec![0; n],
            weightless: vec![0; n],
            samples: vec![Vec::new(); n],
            keyed: (0..n).map(|_| BinaryHeap::new()).collect(),
            position: 0,
        })
    }

    /// Offers one problem (algorithm R on the first take it matches). A mixer is offered
    /// problems either all this way or all by [`Mixer::offer_weighted`].
    pub fn offer(&mut self, problem: Problem) {
        let position = self.position;
        self.position += 1;
        let Some(t) = self.takes.iter().position(|(s, _)| s.matches(&problem)) else {
            return;
        };
        let want = self.takes[t].1;
        let seen = self.seen[t];
        self.seen[t] += 1;
        if seen < want {
            self.samples[t].push((position, problem));
        } else {
            let j = self.rng[t].below(seen + 1);
            if j < want {
                self.samples[t][j as usize] = (position, problem);
            }
        }
    }

    /// Offers one problem with its weight (A-Res on the first take it matches): of a take's
    /// problems, one is drawn with a probability proportional to its weight. A weight of 0 (or
    /// one that is not a finite positive number) never draws.
    pub fn offer_weighted(&mut self, problem: Problem, weight: f64) {
        let position = self.position;
        self.position += 1;
        let Some(t) = self.takes.iter().position(|(s, _)| s.matches(&problem)) else {
            return;
        };
        if !(weight.is_finite() && weight > 0.0) {
            self.weightless[t] += 1;
            return;
        }
        self.seen[t] += 1;
        let want = self.takes[t].1 as usize;
        // Every weighted problem takes one number from its take's stream, drawn or not, so
        // the draw depends on the inputs and the seed only.
        let key = self.rng[t].open_unit().ln() / weight;
        let heap = &mut self.keyed[t];
        if heap.len() < want {
            heap.push(Reverse(Keyed {
                key,
                position,
                problem,
            }));
        } else if heap.peek().is_some_and(|Reverse(low)| key > low.key) {
            heap.pop();
            heap.push(Reverse(Keyed {
                key,
                position,
                problem,
            }));
        }
    }

    /// The mix in input order, with each take's outcome; an error if a take came up short.
    pub fn finish(self) -> Result<(Vec<Problem>, Vec<TakeOutcome>), MixError> {
        let outcomes: Vec<TakeOutcome> = self
            .takes
            .iter()
            .zip(self.seen.iter().zip(&self.weightless))
            .map(|((s, asked), (seen, weightless))| TakeOutcome {
                select: s.clone(),
                asked: *asked,
                available: *seen,
                weightless: *weightless,
            })
            .collect();
        if let Some(short) = outcomes.iter().find(|o| o.available < o.asked) {
            return Err(MixError::Short {
                select: short.select.to_string(),
                asked: short.asked,
                available: short.available,
                weightless: short.weightless,
            });
        }
        let keyed = self
            .keyed
            .into_iter()
            .flatten()
            .map(|Reverse(k)| (k.position, k.problem));
        let mut all: Vec<(u64, Problem)> =
            self.samples.into_iter().flatten().chain(keyed).collect();
        all.sort_by_key(|(p, _)| *p);
        Ok((all.into_iter().map(|(_, p)| p).collect(), outcomes))
    }
}

/// One input of a recipe.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecipeInput {
    /// As given on the command line.
    pub path: String,
    /// Of its bytes.
    pub sha256: String,
}

/// One run a weighted mix measured its weights on: a dataset, pinned by its content.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecipeRun {
    /// As given on the command line (a directory or an object-store URL).
    pub path: String,
    /// The dataset's content hash (`start_dataset::Manifest::content_sha256`: its
    /// shards' names and sha256s), so that a rebuild from a changed run is caught.
    pub content_sha256: String,
    /// Its rows.
    pub rows: u64,
}

/// How a weighted mix weighed its problems by tool usefulness.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UsefulnessRecipe {
    /// The run without tools (mode plain).
    pub plain: RecipeRun,
    /// The run with them (mode hint-infer or rft).
    pub hinted: RecipeRun,
    /// The k of pass@k.
    pub k: u32,
    /// Added to every measured problem's weight (0: only problems where tools help are drawn).
    pub floor: f64,
    /// What the runs said, over the inputs' problems.
    pub summary: usefulness::Summary,
}

/// What rebuilds a mix: written beside it as `<output>.recipe.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Recipe {
    /// start's version that drew it.
    pub start_version: String,
    /// The generator's seed.
    pub seed: u64,
    /// The total shares were taken of.
    pub total: Option<u64>,
    /// The takes, in order.
    pub takes: Vec<Take>,
    /// The inputs, in order (the order decides nothing but the output's).
    pub inputs: Vec<RecipeInput>,
    /// What each take found.
    pub outcomes: Vec<TakeOutcome>,
    /// Of a mix weighted by tool usefulness: the runs and how.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usefulness: Option<UsefulnessRecipe>,
    /// Problems written.
    pub rows: u64,
    /// Of the output's bytes.
    pub output_sha256: String,
}

/// Tool usefulness: how much more often a problem is solved with tools than without, measured
/// on a plain run and a hinted run of the same problems.
pub mod usefulness {
    use serde::{Deserialize, Serialize};
    use std::collections::HashMap;

    /// Samples and correct samples of one problem in one run.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct Tally {
        /// Samples that ran to an end the grader could judge (not infrastructure errors).
        pub n: u32,
        /// Of them, correct.
        pub correct: u32,
    }

    /// The unbiased estimator of pass@k from `n` samples of which `c` are correct (Chen et
    /// al., 2021): `1 - C(n-c, k) / C(n, k)`, as a product so that it stays exact for large n.
    /// `None` when there are fewer than k samples.
    pub fn pass_at_k(n: u32, c: u32, k: u32) -> Option<f64> {
        if k == 0 || n < k || c > n {
            return None;
        }
        if n - c < k {
            return Some(1.0);
        }
        let miss: f64 = (n - c + 1..=n)
            .map(|i| 1.0 - f64::from(k) / f64::from(i))
            .product();
        Some(1.0 - miss)
    }

    /// A problem's tool usefulness: pass@k with tools minus pass@k without, in [-1, 1];
    /// `None` when either run has fewer than k samples of it.
    pub fn of(plain: Tally, hinted: Tally, k: u32) -> Option<f64> {
        Some(pass_at_k(hinted.n, hinted.correct, k)? - pass_at_k(plain.n, plain.correct, k)?)
    }

    /// What the two runs said about the problems offered to the mix.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
    pub struct Summary {
        /// Problems with at least k samples in both runs.
        pub measured: u64,
        /// Of them, where tools help (usefulness above 0).
        pub tools_help: u64,
        /// Where they hurt (below 0).
        pub tools_hurt: u64,
        /// Problems the runs do not measure (missing from one, or fewer than k samples): weight 0.
        pub unmeasured: u64,
        /// Mean usefulness over the measured problems.
        pub mean: f64,
    }

    /// Weights by problem id from the two runs' tallies.
    #[derive(Clone, Debug, Default)]
    pub struct Weights {
        plain: HashMap<String, Tally>,
        hinted: HashMap<String, Tally>,
        k: u32,
        floor: f64,
        summary: Summary,
        sum: f64,
    }

    impl Weights {
        /// Weights at pass@`k`, each measured problem's `max(usefulness, 0) + floor`.
        pub fn new(
            plain: HashMap<String, Tally>,
            hinted: HashMap<String, Tally>,
            k: u32,
            floor: f64,
        ) -> Self {
            Self {
                plain,
                hinted,
                k,
                floor,
                ..Self::default()
            }
        }

        /// The weight of problem `id` (0 when unmeasured), counted into the summary: call it
        /// once per problem offered.
        pub fn weigh(&mut self, id: &str) -> f64 {
            let u = match (self.plain.get(id), self.hinted.get(id)) {
                (Some(p), Some(h)) => of(*p, *h, self.k),
                _ => None,
            };
            let Some(u) = u else {
                self.summary.unmeasured += 1;
                return 0.0;
            };
            self.summary.measured += 1;
            self.summary.tools_help += u64::from(u > 0.0);
            self.summary.tools_hurt += u64::from(u < 0.0);
            self.sum += u;
            u.max(0.0) + self.floor
        }

        /// The summary of the problems weighed.
        pub fn summary(&self) -> Summary {
            Summary {
                mean: if self.summary.measured == 0 {
                    0.0
                } else {
                    self.sum / self.summary.measured as f64
                },
                ..self.summary.clone()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use start_schemas::rows::Location;
    use start_schemas::validate::check_row;

    fn problems() -> Vec<Problem> {
        (0..300)
            .map(|i| {
                let row = if i % 3 == 0 {
                    json!({"id": format!("c{i}"), "source": "codecontests", "kind": "code", "question": format!("q{i}"),
                           "tests": {"type": "stdio", "cases": [{"input": "", "output": "1"}]}})
                } else {
                    json!({"id": format!("m{i}"), "source": if i % 2 == 0 { "aime" } else { "math" }, "kind": "math",
                           "question": format!("q{i}"), "answer": "1"})
                };
                check_row(&row, &Location::file("t")).unwrap()
            })
            .collect()
    }

    fn draw(takes: &[&str], total: Option<u64>, seed: u64) -> Result<Vec<String>, MixError> {
        let takes: Vec<Take> = takes.iter().map(|t| t.parse().unwrap()).collect();
        let mut m = Mixer::new(&takes, total, seed)?;
        for p in problems() {
            m.offer(p);
        }
        let (mix, _) = m.finish()?;
        Ok(mix.into_iter().map(|p| p.id.as_str().to_string()).collect())
    }

    #[test]
    fn counts_and_shares_are_met_and_a_seed_fixes_the_draw() {
        let a = draw(&["math=40", "code=10"], None, 7).unwrap();
        assert_eq!(a.len(), 50);
        assert_eq!(a.iter().filter(|id| id.starts_with('c')).count(), 10);
        assert_eq!(a, draw(&["math=40", "code=10"], None, 7).unwrap());
        assert_ne!(a, draw(&["math=40", "code=10"], None, 8).unwrap());
        let b = draw(&["source:aime=20%", "math=30%", "code=50%"], Some(100), 1).unwrap();
        assert_eq!(b.len(), 100);
        assert_eq!(b.iter().filter(|id| id.starts_with('c')).count(), 50);
    }

    #[test]
    fn the_sample_is_spread_over_the_input_not_its_head() {
        let ids = draw(&["math=20"], None, 3).unwrap();
        let late = ids
            .iter()
            .filter(|id| id[1..].parse::<u32>().unwrap() >= 150)
            .count();
        assert!((5..=15).contains(&late), "{ids:?}");
    }

    #[test]
    fn asking_for_more_than_there_is_or_a_share_of_nothing_is_an_error() {
        assert_eq!(
            draw(&["code=101"], None, 1).unwrap_err(),
            MixError::Short {
                select: "kind:code".into(),
                asked: 101,
                available: 100,
                weightless: 0,
            }
        );
        assert!(matches!(
            draw(&["code=5%"], None, 1),
            Err(MixError::ShareWithoutTotal(_))
        ));
        assert!("maths=3".parse::<Take>().is_err());
        assert!("code=150%".parse::<Take>().is_err());
    }

    /// Draws `math=want` from the math problems of [`problems`], weighing each by `weight`.
    fn weighted(want: u64, seed: u64, weight: impl Fn(u32) -> f64) -> Result<Vec<u32>, MixError> {
        let takes = vec![format!("math={want}").parse().unwrap()];
        let mut m = Mixer::new(&takes, None, seed)?;
        for p in problems() {
            let i: u32 = p.id.as_str()[1..].parse().unwrap();
            m.offer_weighted(p, weight(i));
        }
        let (mix, _) = m.finish()?;
        Ok(mix
            .into_iter()
            .map(|p| p.id.as_str()[1..].parse().unwrap())
            .collect())
    }

    #[test]
    fn a_weighted_draw_follows_the_weights_and_never_draws_weight_zero() {
        // 200 math problems: a quarter weigh 4, the rest 1, every tenth 0. Drawing one at a
        // time, a heavy problem is drawn with probability 4 / (4 * heavy + light).
        let weight = |i: u32| match i {
            _ if i % 10 == 1 => 0.0,
            _ if i % 4 == 1 => 4.0,
            _ => 1.0,
        };
        let (mut heavy, mut drawn) = (0, 0);
        for seed in 0..400 {
            let one = weighted(1, seed, weight).unwrap();
            assert_eq!(one.len(), 1);
            assert_ne!(one[0] % 10, 1, "a weight-0 problem was drawn");
            heavy += usize::from(weight(one[0]) == 4.0);
            drawn += 1;
        }
        let (n_heavy, n_light) = problems()
            .iter()
            .map(|p| p.id.as_str()[1..].parse::<u32>().unwrap())
            .filter(|i| !i.is_multiple_of(3))
            .fold((0.0, 0.0), |(h, l), i| {
                let w = weight(i);
                if w == 4.0 {
                    (h + 1.0, l)
                } else if w == 1.0 {
                    (h, l + 1.0)
                } else {
                    (h, l)
                }
            });
        let expected = 4.0 * n_heavy / (4.0 * n_heavy + n_light);
        let got = heavy as f64 / drawn as f64;
        // 400 draws: the binomial's standard deviation is about 0.025.
        assert!((got - expected).abs() < 0.08, "{got} vs {expected}");
        // A larger draw is reproducible from its seed and holds no weight-0 problem either.
        let a = weighted(50, 9, weight).unwrap();
        assert_eq!(a, weighted(50, 9, weight).unwrap());
        assert_ne!(a, weighted(50, 10, weight).unwrap());
        assert!(a.iter().all(|i| i % 10 != 1));
        assert!(a.windows(2).all(|w| w[0] < w[1]), "not in input order");
    }

    #[test]
    fn a_weighted_take_counts_only_weighted_problems_as_available() {
        let err = weighted(150, 1, |i| f64::from(u8::from(i % 2 == 0))).unwrap_err();
        let MixError::Short {
            available,
            weightless,
            ..
        } = &err
        else {
            panic!("{err:?}")
        };
        // 200 math problems (i % 3 != 0), half of them even.
        assert_eq!((*available, *weightless), (100, 100));
        assert!(err.to_string().contains("of weight above 0"), "{err}");
        assert_eq!(
            weighted(100, 1, |i| f64::from(u8::from(i % 2 == 0)))
                .unwrap()
                .len(),
            100
        );
    }

    #[test]
    fn pass_at_k_is_the_unbiased_estimator() {
        use usefulness::{of, pass_at_k, Tally};
        assert_eq!(pass_at_k(16, 4, 1), Some(0.25));
        // 1 - C(12, 4) / C(16, 4) = 1 - 495 / 1820.
        assert!((pass_at_k(16, 4, 4).unwrap() - (1.0 - 495.0 / 1820.0)).abs() < 1e-12);
        assert_eq!(pass_at_k(4, 1, 4), Some(1.0));
        assert_eq!(pass_at_k(4, 0, 4), Some(0.0));
        assert_eq!(pass_at_k(3, 1, 4), None);
        let t = |n, correct| Tally { n, correct };
        assert_eq!(of(t(4, 1), t(4, 3), 1), Some(0.5));
        assert_eq!(of(t(4, 2), t(4, 0), 1), Some(-0.5));
        assert_eq!(of(t(0, 0), t(4, 0), 1), None);
    }
}
