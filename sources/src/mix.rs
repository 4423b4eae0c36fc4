//! The mix: a problem set drawn from several imported files by counts or shares per kind or
//! source (START's was 40k math and 10k code), reproducibly from a seed, with a recipe that
//! records the inputs by sha256 so that the same mix can be rebuilt and a changed input is
//! caught.
//!
//! Each problem goes to the first take whose selector it matches; each take keeps a uniform
//! sample of its problems (reservoir sampling, so only the sample is held, never the inputs),
//! and the output lists every take's sample in input order. Asking for more than the inputs
//! hold is an error, not a smaller mix.

use serde::{Deserialize, Serialize};
use start_schemas::problem::{splitmix64, Problem, ProblemKind};
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
}

/// Why a mix cannot be drawn.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MixError {
    /// Shares need a total to be shares of.
    #[error("{0} asks for a share, so the mix needs --total")]
    ShareWithoutTotal(String),
    /// The inputs hold fewer problems than a take asks for.
    #[error("{select} asks for {asked} problems but the inputs hold {available}")]
    Short {
        /// The take.
        select: String,
        /// What it asked.
        asked: u64,
        /// What there was.
        available: u64,
    },
}

/// One take's outcome, for the recipe.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TakeOutcome {
    /// The selector.
    pub select: Selector,
    /// Problems asked for.
    pub asked: u64,
    /// Problems the inputs held for it.
    pub available: u64,
}

/// Draws the mix while problems stream past.
pub struct Mixer {
    takes: Vec<(Selector, u64)>,
    rng: Vec<Draw>,
    seen: Vec<u64>,
    /// Per take: (position in the input, problem).
    samples: Vec<Vec<(u64, Problem)>>,
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
            samples: vec![Vec::new(); n],
            position: 0,
        })
    }

    /// Offers one problem (algorithm R on the first take it matches).
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

    /// The mix in input order, with each take's outcome; an error if a take came up short.
    pub fn finish(self) -> Result<(Vec<Problem>, Vec<TakeOutcome>), MixError> {
        let outcomes: Vec<TakeOutcome> = self
            .takes
            .iter()
            .zip(&self.seen)
            .map(|((s, asked), seen)| TakeOutcome {
                select: s.clone(),
                asked: *asked,
                available: *seen,
            })
            .collect();
        if let Some(short) = outcomes.iter().find(|o| o.available < o.asked) {
            return Err(MixError::Short {
                select: short.select.to_string(),
                asked: short.asked,
                available: short.available,
            });
        }
        let mut all: Vec<(u64, Problem)> = self.samples.into_iter().flatten().collect();
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
    /// Problems written.
    pub rows: u64,
    /// Of the output's bytes.
    pub output_sha256: String,
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
                available: 100
            }
        );
        assert!(matches!(
            draw(&["code=5%"], None, 1),
            Err(MixError::ShareWithoutTotal(_))
        ));
        assert!("maths=3".parse::<Take>().is_err());
        assert!("code=150%".parse::<Take>().is_err());
    }
}
