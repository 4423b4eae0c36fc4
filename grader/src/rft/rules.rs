//! The quality rules the teams behind the largest TIR sets published, each computed from a
//! row's own segments and tool calls (no model, no I/O), so that the SFT set can be rebuilt
//! under any of them. The rules are theirs; this code is written from their papers:
//!
//! - NeMo-Skills' OpenMathReasoning (arXiv 2504.16891) rejects a TIR solution with no code, with
//!   a code or output block left unclosed, with a boxed answer before the first code block (the
//!   code only checked an answer already written) or with no final answer; at SFT time it also
//!   drops solutions whose code failed (tracebacks, time-outs, cut output), whose code only
//!   verifies, that call matplotlib, or that box several answers.
//! - SimpleTIR (arXiv 2509.02479) drops a trajectory with a *void turn*: a model turn after a
//!   tool result that yields neither a code block nor a final answer.
//! - NeMo-Skills also keeps, of a problem's solutions, those that reach its majority answer,
//!   and asks an LLM judge whether each code block is a novel and significant step
//!   ([`crate::judge`]); both need more than the row: its problem's other rows, the judge job's
//!   verdicts. They are set on the verdicts by whoever holds that ([`Verdicts::mark`]).
//! - rStar2-Agent (arXiv 2508.20722) resamples among correct trajectories, preferring those with
//!   the fewest tool errors and no repeated answer tags ([`crate::rft::Select::ResampleOnCorrect`]).
//!
//! A row's verdict on every rule is computed once, when its features are read
//! ([`Verdicts::of`]), and kept as a bit set with its count of answer tags: four bytes a row.

use start_schemas::answer::all_boxed;
use start_schemas::trajectory::{SegmentKind, Trajectory};

/// One rule. Each drops the rows it names; none is on by default (START's own selection is
/// unchanged), `startctl export --filter NAME` switches one on, or a preset a source's set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    /// No code block was run.
    NoCode,
    /// A code or output block was opened and never closed (an odd number of fences).
    UnclosedBlock,
    /// A `\boxed{}` answer came before the first code block.
    AnswerBeforeCode,
    /// No final answer was extracted.
    NoFinalAnswer,
    /// A code block failed: a non-zero exit (a traceback, a syntax error), a time-out, a memory
    /// kill, a sandbox error, or output cut to the limit.
    CodeError,
    /// Every code block was introduced as a check of something already worked out ("let me
    /// verify this with Python").
    VerificationOnly,
    /// A code block uses matplotlib.
    Matplotlib,
    /// More than one `\boxed{}` in the generated text, the same answer twice included (the
    /// model boxed, then boxed again): NeMo-Skills drops every such solution.
    SeveralBoxed,
    /// The final answer is not the most common one among the problem's finished rows (ties
    /// all count as the majority); answers compared with case and whitespace ignored.
    Majority,
    /// The judge job's verdicts do not keep the row ([`crate::judge::keeps`]): no novel and
    /// significant block, and fewer than half its blocks novel and at least moderate. A row
    /// the judge job never saw breaks it.
    Judge,
    /// After its last tool output the model wrote neither another code block nor a final
    /// answer (SimpleTIR's void turn): no answer after its thinking and no `\boxed{}`.
    VoidTurn,
}

/// Every rule, in the order their counts are printed (and a row breaking several is counted
/// under the first): SimpleTIR's, NeMo-Skills' read off the row, its majority rule, then its
/// judge's (which needs a judge job's verdicts). The order makes each preset a run of it.
pub const RULES: [Rule; 11] = [
    Rule::VoidTurn,
    Rule::NoCode,
    Rule::UnclosedBlock,
    Rule::AnswerBeforeCode,
    Rule::NoFinalAnswer,
    Rule::CodeError,
    Rule::VerificationOnly,
    Rule::Matplotlib,
    Rule::SeveralBoxed,
    Rule::Majority,
    Rule::Judge,
];

/// The rules read off the row alone ([`Verdicts::of`]): SimpleTIR's and NeMo-Skills' first
/// eight.
pub const ROW_RULES: &[Rule] = RULES.split_at(9).0;

/// Phrases that introduce a block as a check of a result already reached.
const VERIFY_PHRASES: [&str; 6] = [
    "verify",
    "double-check",
    "double check",
    "confirm",
    "sanity check",
    "check this",
];

/// How far back before a code block its introduction is looked for, in bytes.
const INTRO_WINDOW: usize = 200;

impl Rule {
    /// The name `--filter` takes.
    pub fn name(self) -> &'static str {
        match self {
            Self::NoCode => "no-code",
            Self::UnclosedBlock => "unclosed-block",
            Self::AnswerBeforeCode => "answer-before-code",
            Self::NoFinalAnswer => "no-final-answer",
            Self::CodeError => "code-error",
            Self::VerificationOnly => "verification-only",
            Self::Matplotlib => "matplotlib",
            Self::SeveralBoxed => "several-boxed",
            Self::Majority => "majority",
            Self::VoidTurn => "void-turn",
            Self::Judge => "judge",
        }
    }

    /// The removal reason counted in the export summary and the report.
    pub fn reason(self) -> &'static str {
        match self {
            Self::NoCode => "no code (no-code)",
            Self::UnclosedBlock => "block left unclosed (unclosed-block)",
            Self::AnswerBeforeCode => "boxed answer before the first code (answer-before-code)",
            Self::NoFinalAnswer => "no final answer (no-final-answer)",
            Self::CodeError => "failed code execution (code-error)",
            Self::VerificationOnly => "code only verifies (verification-only)",
            Self::Matplotlib => "matplotlib call (matplotlib)",
            Self::SeveralBoxed => "several boxed answers (several-boxed)",
            Self::Majority => "not the majority answer (majority)",
            Self::VoidTurn => "void turn after a tool result (void-turn)",
            Self::Judge => "no novel significant block by the judge (judge)",
        }
    }

    /// Which published recipe the rule comes from.
    pub fn source(self) -> &'static str {
        match self {
            Self::VoidTurn => "SimpleTIR",
            _ => "NeMo-Skills OpenMathReasoning",
        }
    }

    /// The rule named `name`.
    pub fn named(name: &str) -> Option<Self> {
        RULES.into_iter().find(|r| r.name() == name)
    }

    fn bit(self) -> u16 {
        1 << RULES
            .iter()
            .position(|&r| r == self)
            .expect("every rule is listed")
    }
}

/// The presets `--filter` takes: each source's recipe as a set of rules.
pub const PRESETS: [(&str, &[Rule]); 4] = [
    // What OpenMathReasoning's generation keeps, then what its SFT set keeps: every rule of
    // theirs that needs no judge job.
    ("nemo-skills", RULES.split_at(10).0.split_at(1).1),
    // The same with the judge's verdicts (`--judge DATASET`).
    ("nemo-skills-judged", RULES.split_at(1).1),
    ("simpletir", RULES.split_at(1).0),
    // Every rule that needs no judge job.
    ("all-rules", RULES.split_at(10).0),
];

/// The rules named by `name`: one rule, or a preset's.
pub fn parse(name: &str) -> Result<Vec<Rule>, String> {
    if let Some(rule) = Rule::named(name) {
        return Ok(vec![rule]);
    }
    if let Some((_, rules)) = PRESETS.iter().find(|(p, _)| *p == name) {
        return Ok(rules.to_vec());
    }
    let known: Vec<&str> = RULES
        .iter()
        .map(|r| r.name())
        .chain(PRESETS.iter().map(|(p, _)| *p))
        .collect();
    Err(format!(
        "unknown filter {name:?}; known: {}",
        known.join(", ")
    ))
}

/// A row's verdicts: which rules it breaks, and how many answer tags it carries (for
/// Resample-on-Correct's ranking).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Verdicts {
    broken: u16,
    /// `\boxed{}` answers in the generated text.
    pub answer_tags: u16,
}

impl Verdicts {
    /// Whether the row breaks `rule`.
    pub fn breaks(self, rule: Rule) -> bool {
        self.broken & rule.bit() != 0
    }

    /// The first of `rules` (in [`RULES`] order) the row breaks.
    pub fn first_broken(self, rules: &[Rule]) -> Option<Rule> {
        RULES
            .into_iter()
            .find(|&r| rules.contains(&r) && self.breaks(r))
    }

    /// Records the row's verdict on `rule`: for the rules [`Verdicts::of`] cannot read off the
    /// row alone ([`Rule::Majority`], [`Rule::Judge`]).
    pub fn mark(&mut self, rule: Rule, broken: bool) {
        self.set(rule, broken);
    }

    fn set(&mut self, rule: Rule, broken: bool) {
        if broken {
            self.broken |= rule.bit();
        }
    }

    /// The verdict on every rule of [`ROW_RULES`] on `t`.
    pub fn of(t: &Trajectory) -> Self {
        let generated = |k: SegmentKind| k.is_generated();
        let first_code = t.segments.iter().position(|s| s.kind == SegmentKind::Code);
        let last_output = t
            .segments
            .iter()
            .rposition(|s| s.kind == SegmentKind::Output);
        let mut v = Verdicts::default();

        v.set(Rule::NoCode, t.tool_calls.is_empty());
        v.set(
            Rule::UnclosedBlock,
            t.full_text.matches("```").count() % 2 == 1,
        );
        let before_code = &t.segments[..first_code.unwrap_or(0)];
        v.set(
            Rule::AnswerBeforeCode,
            before_code
                .iter()
                .any(|s| generated(s.kind) && !all_boxed(&s.text).is_empty()),
        );
        let answer = t.final_answer.as_deref().map(str::trim).unwrap_or("");
        v.set(Rule::NoFinalAnswer, answer.is_empty());
        v.set(
            Rule::CodeError,
            t.tool_calls.iter().any(|c| c.failed() || c.truncated),
        );
        v.set(Rule::VerificationOnly, verification_only(t));
        v.set(
            Rule::Matplotlib,
            t.segments
                .iter()
                .any(|s| s.kind == SegmentKind::Code && s.text.contains("matplotlib")),
        );
        let boxed: Vec<String> = t
            .segments
            .iter()
            .filter(|s| generated(s.kind))
            .flat_map(|s| all_boxed(&s.text))
            .collect();
        v.answer_tags = boxed.len().min(u16::MAX as usize) as u16;
        v.set(Rule::SeveralBoxed, boxed.len() > 1);
        if let Some(last) = last_output {
            let tail = &t.segments[last + 1..];
            let has_code = tail.iter().any(|s| s.kind == SegmentKind::Code);
            let text: String = tail
                .iter()
                .filter(|s| generated(s.kind))
                .map(|s| s.text.as_str())
                .collect();
            // A final answer: the model ended its thinking and answered, or boxed one.
            let answered = tail
                .iter()
                .any(|s| s.kind == SegmentKind::Answer && !s.text.trim().is_empty())
                || !all_boxed(&text).is_empty();
            v.set(Rule::VoidTurn, !has_code && !answered);
        }
        v
    }
}

/// Whether every code block of `t` is introduced, in the model's own words just before it, as
/// a check. Rows without code are not (that is [`Rule::NoCode`]).
fn verification_only(t: &Trajectory) -> bool {
    let mut blocks = 0;
    for (i, s) in t.segments.iter().enumerate() {
        if s.kind != SegmentKind::Code {
            continue;
        }
        blocks += 1;
        // The model's text just before the block, back to the last tool output.
        let mut intro = String::new();
        for p in t.segments[..i].iter().rev() {
            match p.kind {
                SegmentKind::Output | SegmentKind::Code => break,
                SegmentKind::Hint => continue,
                _ => intro.insert_str(0, &p.text),
            }
            if intro.len() >= INTRO_WINDOW {
                break;
            }
        }
        let start = intro.len().saturating_sub(INTRO_WINDOW);
        let start = (start..=intro.len())
            .find(|&b| intro.is_char_boundary(b))
            .unwrap_or(intro.len());
        let intro = intro[start..].to_lowercase();
        if !VERIFY_PHRASES.iter().any(|p| intro.contains(p)) {
            return false;
        }
    }
    blocks > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_presets_parse_and_unknown_names_are_refused_by_name() {
        for rule in RULES {
            assert_eq!(parse(rule.name()).unwrap(), [rule]);
            assert!(!rule.reason().is_empty() && !rule.source().is_empty());
        }
        assert_eq!(parse("simpletir").unwrap(), [Rule::VoidTurn]);
        let nemo = parse("nemo-skills").unwrap();
        assert_eq!(nemo.len(), RULES.len() - 2);
        assert!(nemo.iter().all(|r| r.source().starts_with("NeMo-Skills")));
        let judged = parse("nemo-skills-judged").unwrap();
        assert_eq!(judged[..nemo.len()], nemo[..]);
        assert_eq!(judged[nemo.len()..], [Rule::Judge]);
        let all = parse("all-rules").unwrap();
        assert_eq!(all.len(), RULES.len() - 1);
        assert!(!all.contains(&Rule::Judge));
        let err = parse("no-kode").unwrap_err();
        assert!(err.contains("no-kode") && err.contains("no-code"), "{err}");
    }
}
