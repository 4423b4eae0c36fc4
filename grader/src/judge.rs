//! Judge jobs: an LLM's verdict on every code block of a dataset's trajectories.
//!
//! NeMo-Skills (OpenMathReasoning, arXiv 2504.16891) asks a judge model, for each code block of
//! a TIR solution, whether the block does a new calculation or only verifies one already done
//! (*novelty*), and how much it matters to the solution (*significance*: trivial, moderate,
//! significant). A block is novel only when every vote says so; a solution is kept when one
//! block is novel and significant, or when at least half its blocks are novel and at least
//! moderate. The rule is theirs; the prompt, the verdict format, the parser and the way votes
//! are combined are start's own.
//!
//! The path: [`items`] renders one judge prompt per code block of a row (a problem of kind
//! `judge`, id [`item_id`]); a judge job (mode `judge`) generates each with the tools off, its
//! samples being the votes; the worker parses each response with [`parse`] and samples again
//! when it does not parse; export reads the judge job's dataset back ([`Votes`]) and applies the
//! rule ([`Votes::keeps`]) by `trajectory_sha256`.

use serde_json::json;
use start_schemas::trajectory::{SegmentKind, Trajectory};
use std::collections::HashMap;
use std::fmt;

/// The built-in prompt. Placeholders: `{problem}` (the user turn the solver saw), `{context}`
/// (the solution before the block, its last [`CONTEXT_CHARS`] characters), `{code}` and
/// `{output}` (the block and what it printed). The last two lines it asks for are what
/// [`parse`] reads.
pub const DEFAULT_TEMPLATE: &str = "You are reviewing one code block of a step-by-step solution written by a student who may run Python while reasoning.

## Problem
{problem}

## The solution up to the block
{context}

## The code block
```python
{code}
```

## What it printed
```
{output}
```

Decide two things about this code block.
1. Novelty: does the block compute something the solution had not already worked out (novel), or does it only check a result already written in the text before it (verification)?
2. Significance: how much does the block advance the solution? trivial (arithmetic the student could do in their head), moderate (a real step, but a small one), or significant (a step the solution depends on, hard to do by hand).

Explain briefly, then end your reply with exactly these two lines:
Novelty: novel or verification
Significance: trivial, moderate or significant";

/// How much of the solution before a block a prompt shows, in characters from its end: the
/// block's own step is near it, and a QwQ trajectory before a late block can run to 30k tokens.
pub const CONTEXT_CHARS: usize = 6000;

/// The placeholders a template may use.
pub const PLACEHOLDERS: [&str; 4] = ["problem", "context", "code", "output"];

/// A prompt template with `{name}` placeholders.
#[derive(Clone, Debug)]
pub struct Template {
    text: String,
}

/// A template that names an unknown placeholder or none of the block's.
#[derive(Debug, thiserror::Error)]
#[error("judge template: {0}")]
pub struct TemplateError(String);

impl Template {
    /// Checks `text`: every `{name}` must be one of [`PLACEHOLDERS`], and `{code}` must be
    /// there (a prompt without the block judges nothing).
    pub fn new(text: impl Into<String>) -> Result<Self, TemplateError> {
        let text = text.into();
        let mut has_code = false;
        for name in placeholders(&text) {
            if !PLACEHOLDERS.contains(&name) {
                return Err(TemplateError(format!(
                    "unknown placeholder {{{name}}}; known: {}",
                    PLACEHOLDERS.map(|p| format!("{{{p}}}")).join(", ")
                )));
            }
            has_code |= name == "code";
        }
        if !has_code {
            return Err(TemplateError("no {code} placeholder".into()));
        }
        Ok(Self { text })
    }

    /// The built-in template.
    pub fn builtin() -> Self {
        Self::new(DEFAULT_TEMPLATE).expect("the built-in template is valid")
    }

    /// The template with each placeholder replaced in one pass, so a `{code}` inside the
    /// problem or the context stays as written.
    pub fn render(&self, values: &HashMap<&str, &str>) -> String {
        let mut out = String::with_capacity(self.text.len() + 4096);
        let mut rest = self.text.as_str();
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            match after.find('}').map(|close| (&after[..close], close)) {
                Some((name, close)) if values.contains_key(name) => {
                    out.push_str(values[name]);
                    rest = &after[close + 1..];
                }
                _ => {
                    out.push('{');
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out
    }
}

/// The `{name}` tokens of `text` whose name is a word (letters, digits, `_`): a brace in the
/// template's prose (`{}` or `{ x }`) is not a placeholder.
fn placeholders(text: &str) -> impl Iterator<Item = &str> {
    text.match_indices('{').filter_map(move |(i, _)| {
        let after = &text[i + 1..];
        let name = &after[..after.find('}')?];
        (!name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
            .then_some(name)
    })
}

/// The id of the judge prompt for block `block` (0-based, in the order the blocks ran) of the
/// row whose `trajectory_sha256` is `sha256`: `{sha256}.b{block}`. Joinable: a judge dataset's
/// `problem_id` splits back into the two ([`parse_item_id`]).
pub fn item_id(sha256: &str, block: usize) -> String {
    format!("{sha256}.b{block}")
}

/// The row and block a judge prompt's id names; `None` for an id of another shape.
pub fn parse_item_id(id: &str) -> Option<(&str, usize)> {
    let (sha, block) = id.rsplit_once(".b")?;
    let ok = sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit());
    Some((sha, block.parse().ok()?)).filter(|_| ok)
}

/// One judge prompt: which block of which row, and the prompt.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    /// [`item_id`].
    pub id: String,
    /// The rendered prompt.
    pub prompt: String,
}

/// The judge prompts of `t`: one per code block that ran (a code segment followed by its
/// output), in order.
pub fn items(t: &Trajectory, template: &Template) -> Vec<Item> {
    blocks_ran(t)
        .enumerate()
        .map(|(block, i)| {
            let context: String = t.segments[..i].iter().map(|s| s.text.as_str()).collect();
            let values = HashMap::from([
                ("problem", t.user_message.as_str()),
                ("context", tail(&context, CONTEXT_CHARS)),
                ("code", fence_body(&t.segments[i].text)),
                ("output", fence_body(&t.segments[i + 1].text)),
            ]);
            Item {
                id: item_id(&t.trajectory_sha256, block),
                prompt: template.render(&values),
            }
        })
        .collect()
}

/// The segment index of each code block of `t` that ran (a code segment followed by its
/// output), in order: the blocks [`items`] writes a prompt for, and those
/// [`Votes::keeps`] weighs a row's judged blocks against.
fn blocks_ran(t: &Trajectory) -> impl Iterator<Item = usize> + '_ {
    t.segments
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w[0].kind == SegmentKind::Code && w[1].kind == SegmentKind::Output)
        .map(|(i, _)| i)
}

/// The last `n` characters of `s` (at a character boundary).
fn tail(s: &str, n: usize) -> &str {
    if n == 0 {
        return "";
    }
    s.char_indices()
        .rev()
        .nth(n - 1)
        .map_or(s, |(i, _)| &s[i..])
}

/// A fenced block's body: without its opening line (```` ```python ````) and closing fence.
fn fence_body(block: &str) -> &str {
    let t = block.trim();
    let Some(body) = t.strip_prefix("```") else {
        return t;
    };
    let body = body.split_once('\n').map_or("", |(_, b)| b);
    body.strip_suffix("```").unwrap_or(body).trim_end()
}

/// What a block does, by the judge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Novelty {
    /// A new calculation.
    Novel,
    /// A check of a result already reached.
    Verification,
}

/// How much a block advances the solution, by the judge; ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Significance {
    /// Arithmetic the solver could do in its head.
    Trivial,
    /// A small real step.
    Moderate,
    /// A step the solution rests on.
    Significant,
}

/// One parsed verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Novel or verification.
    pub novelty: Novelty,
    /// Trivial, moderate or significant.
    pub significance: Significance,
}

impl fmt::Display for Verdict {
    /// `novel significant`, `verification trivial`: the judge row's `final_answer`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = match self.novelty {
            Novelty::Novel => "novel",
            Novelty::Verification => "verification",
        };
        let s = match self.significance {
            Significance::Trivial => "trivial",
            Significance::Moderate => "moderate",
            Significance::Significant => "significant",
        };
        write!(f, "{n} {s}")
    }
}

impl Verdict {
    /// The verdict a judge row's `final_answer` holds ([`Verdict`]'s display form).
    pub fn from_answer(answer: &str) -> Option<Self> {
        let (n, s) = answer.trim().split_once(' ')?;
        Some(Self {
            novelty: novelty(n)?,
            significance: significance(s)?,
        })
    }
}

fn novelty(value: &str) -> Option<Novelty> {
    let v = value.to_ascii_lowercase();
    // "not novel" and "novel or verification" (the format line copied) say nothing certain.
    let says_novel = (v.contains("novel") || v.contains("new calculation")) && !v.contains("not ");
    let says_check = v.contains("verif") || v.contains("check");
    match (says_novel, says_check) {
        (true, false) => Some(Novelty::Novel),
        (false, true) => Some(Novelty::Verification),
        _ => None,
    }
}

fn significance(value: &str) -> Option<Significance> {
    let v = value.to_ascii_lowercase();
    let found: Vec<Significance> = [
        ("trivial", Significance::Trivial),
        ("moderate", Significance::Moderate),
        ("significant", Significance::Significant),
    ]
    .into_iter()
    .filter(|(word, _)| {
        // "insignificant" is not "significant".
        v.match_indices(word)
            .any(|(i, _)| !v[..i].ends_with("in") && !v[..i].ends_with("not "))
    })
    .map(|(_, s)| s)
    .collect();
    (found.len() == 1).then(|| found[0])
}

/// The verdict in a judge's response: the last line labelled `Novelty:` and the last labelled
/// `Significance:` (case, markdown emphasis and list marks ignored), each naming exactly one
/// value. `None` when either is missing or names none or several (the format line copied as
/// it was given): the worker samples again.
pub fn parse(response: &str) -> Option<Verdict> {
    let mut n = None;
    let mut s = None;
    for line in response.lines() {
        let line = line.trim_matches(|c: char| c.is_whitespace() || "*#->_`".contains(c));
        let Some((label, value)) = line.split_once(':') else {
            continue;
        };
        let label = label
            .trim_matches(|c: char| c.is_whitespace() || "*_`".contains(c))
            .to_ascii_lowercase();
        let value = value.trim_matches(|c: char| c.is_whitespace() || "*_`.".contains(c));
        if label.ends_with("novelty") {
            n = Some(novelty(value));
        } else if label.ends_with("significance") {
            s = Some(significance(value));
        }
    }
    Some(Verdict {
        novelty: n.flatten()?,
        significance: s.flatten()?,
    })
}

/// The grade of a judge response: the verdict as `final_answer`, never right or wrong
/// (`correct` is `None`: a judge row is not a solution).
pub fn grade(response: &str) -> crate::Grade {
    let verdict = parse(response);
    crate::Grade {
        correct: None,
        score: 0.0,
        final_answer: verdict.map(|v| v.to_string()),
        detail: match verdict {
            Some(v) => json!({
                "method": "judge verdict",
                "novelty": format!("{:?}", v.novelty).to_lowercase(),
                "significance": format!("{:?}", v.significance).to_lowercase(),
            }),
            None => json!({"method": "judge verdict", "reason": "no verdict in the response"}),
        },
    }
}

/// The votes on one block: each parsed verdict, and how many responses never parsed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BlockVotes {
    /// Parsed verdicts, one per vote.
    pub verdicts: Vec<Verdict>,
    /// Votes whose every attempt failed to parse.
    pub unparsed: u32,
}

impl BlockVotes {
    /// Novel only when every vote says so (a vote that never parsed says nothing, and a block
    /// without a parsed vote is not novel).
    pub fn novel(&self) -> bool {
        !self.verdicts.is_empty()
            && self.unparsed == 0
            && self.verdicts.iter().all(|v| v.novelty == Novelty::Novel)
    }

    /// The significance most votes give; a tie goes to the lower level (a judge that hesitates
    /// has not shown the block matters). `None` without a parsed vote.
    pub fn significance(&self) -> Option<Significance> {
        let mut counts = [0u32; 3];
        for v in &self.verdicts {
            counts[v.significance as usize] += 1;
        }
        let best = *counts.iter().max()?;
        (best > 0).then(|| {
            [
                Significance::Trivial,
                Significance::Moderate,
                Significance::Significant,
            ][counts
                .iter()
                .position(|&c| c == best)
                .expect("max is present")]
        })
    }
}

/// Every judged block of every row, by `trajectory_sha256` then block index.
#[derive(Clone, Debug, Default)]
pub struct Votes {
    by_row: HashMap<String, Vec<BlockVotes>>,
}

impl Votes {
    /// Adds one judge row: its `problem_id` (an [`item_id`]) and `final_answer`. `false` when
    /// the id is not a judge item's (the row is not counted).
    pub fn add(&mut self, problem_id: &str, final_answer: Option<&str>) -> bool {
        let Some((sha, block)) = parse_item_id(problem_id) else {
            return false;
        };
        let blocks = self.by_row.entry(sha.to_string()).or_default();
        if blocks.len() <= block {
            blocks.resize(block + 1, BlockVotes::default());
        }
        match final_answer.and_then(Verdict::from_answer) {
            Some(v) => blocks[block].verdicts.push(v),
            None => blocks[block].unparsed += 1,
        }
        true
    }

    /// The votes on the blocks of the row with this `trajectory_sha256`; `None` when none of
    /// its blocks was judged.
    pub fn of(&self, sha256: &str) -> Option<&[BlockVotes]> {
        self.by_row.get(sha256).map(Vec::as_slice)
    }

    /// Rows with at least one judged block.
    pub fn rows(&self) -> usize {
        self.by_row.len()
    }

    /// Whether the judge's verdicts keep `t` ([`keeps`]), each block of it that ran weighed,
    /// a block the judge job did not see as one without a vote.
    pub fn keeps(&self, t: &Trajectory) -> bool {
        let judged = self.of(&t.trajectory_sha256).unwrap_or_default();
        keeps_among(judged, blocks_ran(t).count().max(judged.len()))
    }
}

/// NeMo-Skills' rule on a row's blocks (`blocks`: one entry per block that ran, judged or
/// not): keep it when one block is novel and significant, or when at least half its blocks are
/// novel and at least moderate. A row with no block is not kept.
pub fn keeps(blocks: &[BlockVotes]) -> bool {
    keeps_among(blocks, blocks.len())
}

/// [`keeps`] for a row of `total` blocks of which `judged` are the first (the others have no
/// vote, so they are never novel but count towards the half).
fn keeps_among(judged: &[BlockVotes], total: usize) -> bool {
    let novel_at = |level: Significance| {
        judged
            .iter()
            .filter(|b| b.novel() && b.significance() >= Some(level))
            .count()
    };
    total > 0
        && (novel_at(Significance::Significant) > 0
            || 2 * novel_at(Significance::Moderate) >= total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(n: Novelty, s: Significance) -> Verdict {
        Verdict {
            novelty: n,
            significance: s,
        }
    }

    #[test]
    fn the_last_labelled_lines_are_the_verdict_in_any_markdown() {
        let r = "The block computes the sum.\n\n**Novelty:** Novel\n**Significance**: *moderate*.";
        assert_eq!(parse(r), Some(v(Novelty::Novel, Significance::Moderate)));
        let r = "Novelty: verification\nSignificance: trivial\n\nOn reflection:\n- Novelty: novel calculation\n- Significance: significant";
        assert_eq!(parse(r), Some(v(Novelty::Novel, Significance::Significant)));
        // The format line copied as given names two values: no verdict.
        assert_eq!(
            parse("Novelty: novel or verification\nSignificance: trivial, moderate or significant"),
            None
        );
        assert_eq!(parse("Novelty: not novel\nSignificance: moderate"), None);
        assert_eq!(parse("Novelty: novel\nSignificance: insignificant"), None);
        assert_eq!(parse("I think it is novel and significant."), None);
        assert_eq!(
            parse("Novelty: it only checks\nSignificance: Trivial"),
            Some(v(Novelty::Verification, Significance::Trivial))
        );
    }

    #[test]
    fn a_verdict_round_trips_through_its_answer_form() {
        for n in [Novelty::Novel, Novelty::Verification] {
            for s in [
                Significance::Trivial,
                Significance::Moderate,
                Significance::Significant,
            ] {
                assert_eq!(Verdict::from_answer(&v(n, s).to_string()), Some(v(n, s)));
            }
        }
        assert_eq!(Verdict::from_answer("novel"), None);
    }

    #[test]
    fn templates_refuse_unknown_placeholders_and_render_in_one_pass() {
        assert!(Template::new("judge {code} of {solution}").is_err());
        assert!(Template::new("judge {problem}").is_err());
        let t = Template::new("P: {problem}\nC: {code} {}").unwrap();
        let out = t.render(&HashMap::from([
            ("problem", "find {code}"),
            ("code", "x=1"),
        ]));
        assert_eq!(out, "P: find {code}\nC: x=1 {}");
        assert!(Template::builtin()
            .render(&HashMap::new())
            .contains("Novelty:"));
    }

    #[test]
    fn ids_split_back_into_row_and_block() {
        let sha = "ab".repeat(32);
        assert_eq!(parse_item_id(&item_id(&sha, 12)), Some((sha.as_str(), 12)));
        assert_eq!(parse_item_id("aime-1.b2"), None);
        assert_eq!(parse_item_id(&format!("{sha}.bx")), None);
    }

    #[test]
    fn novel_needs_every_vote_and_the_keep_rule_is_one_significant_or_half_moderate() {
        let block = |votes: &[Verdict], unparsed| BlockVotes {
            verdicts: votes.to_vec(),
            unparsed,
        };
        let ns = v(Novelty::Novel, Significance::Significant);
        let nm = v(Novelty::Novel, Significance::Moderate);
        let nt = v(Novelty::Novel, Significance::Trivial);
        let vs = v(Novelty::Verification, Significance::Significant);
        assert!(block(&[ns, ns], 0).novel());
        assert!(!block(&[ns, vs], 0).novel());
        assert!(!block(&[ns], 1).novel());
        assert!(!block(&[], 0).novel());
        assert_eq!(
            block(&[nm, nt], 0).significance(),
            Some(Significance::Trivial)
        );
        assert_eq!(
            block(&[nm, nm, ns], 0).significance(),
            Some(Significance::Moderate)
        );
        // One novel significant block keeps a row of many trivial ones.
        assert!(keeps(&[block(&[nt], 0), block(&[nt], 0), block(&[ns], 0)]));
        // Half the blocks novel and moderate keeps it; fewer does not.
        assert!(keeps(&[block(&[nm], 0), block(&[nt], 0)]));
        assert!(!keeps(&[block(&[nm], 0), block(&[nt], 0), block(&[nt], 0)]));
        // A significant block that is only a check does not count.
        assert!(!keeps(&[block(&[vs], 0)]));
        assert!(!keeps(&[]));
    }
}
