//! Both drivers of the one Hint-infer core write the same row for the same tokens: random
//! token streams (trigger words, fences of enabled and disabled tools, ends of thinking and of
//! the turn, under random hint settings and limits) are written by the in-process engine (its
//! scripted model) and by the OpenAI-compatible backend on llama.cpp's own llama-server (its
//! scripted stream), and every row must be byte-identical but for wall times and durations.
//!
//! Each stream is a scripted opening long enough that the trajectory ends (on a limit, the end
//! of the turn or an error) before the script does: no token of either row is the model's own
//! sampling, whose numbers differ between a process and a server. The cases come from a seed
//! (`START_SAME_ROWS_SEED`, default fixed) and their number from `START_SAME_ROWS_CASES`
//! (default 40); a failure names its case's script and settings.

use crate::common::*;
use start_engine::{EngineConfig, GenOutput};
use start_schemas::problem::splitmix64;
use start_schemas::trajectory::{HintTrigger, Mode};

/// Pieces of text the model "writes", as they come in QwQ-like reasoning.
const PIECES: &[&str] = &[
    "Let me compute this. ",
    "So x = 3.",
    " Wait,",
    " Wait",
    "\nWait, ",
    "Alternatively, ",
    " Hmm, ",
    "But wait, ",
    "\n",
    "The answer is \\boxed{42}.",
    "```python\nprint(6*7)\n```\n",
    "```python\nprint(sum(range(10)))\n```",
    "```python\nimport sys\nprint('to stderr', file=sys.stderr)\n```\n",
    "```python\nprint(1/0)\n```\n",
    "```sql\nSELECT 1;\n```\n",
    "</think>",
    "\n</think>\n\n",
    "<|im_end|>",
    "é€ ",
    "a b c d ",
];

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Dice(u64);

impl Dice {
    fn below(&mut self, n: u64) -> u64 {
        splitmix64(&mut self.0) % n
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.below(1_000_000) as f64) < p * 1_000_000.0
    }
}

/// One random case: its request (with the script as its opening).
fn case(dice: &mut Dice, i: u64) -> Req {
    let mut script = String::new();
    for _ in 0..10 + dice.below(40) {
        script.push_str(PIECES[dice.below(PIECES.len() as u64) as usize]);
    }
    // Plain filler after the random part, so that a limit ends the row before the script ends.
    script.push_str(&" a".repeat(400));
    let mode = if dice.chance(0.8) {
        Mode::HintInfer
    } else {
        Mode::Plain
    };
    let mut req = request("What is 6 times 7?", &script, mode, 0, 1000 + i);
    req.params.max_new_tokens = 20 + dice.below(300) as u32;
    req.params.max_tool_calls = dice.below(4) as u32;
    let h = &mut req.hints;
    h.trigger_probability = [0.0, 0.5, 1.0][dice.below(3) as usize];
    h.max_trigger_hints = dice.below(3) as u32;
    h.end_hints = dice.below(3) as u32;
    h.min_tool_calls_left = dice.below(3) as u32;
    h.min_context_left = [0, 64, 400][dice.below(3) as usize];
    h.run_answer_code = dice.chance(0.3);
    req
}

/// A row as compared: everything but wall times and tool durations.
fn row(out: &GenOutput) -> String {
    let calls: Vec<String> = out
        .tool_calls
        .iter()
        .map(|c| {
            format!(
                "{} {} {:?} {} {} {} {:?}",
                c.segment,
                c.tool,
                c.exit_code,
                c.timed_out,
                c.memory_exceeded,
                c.truncated,
                c.error
            )
        })
        .collect();
    format!(
        "prompt {:?} {:?} prefix {}\nsegments {:#?}\ncalls {calls:#?}\nfigures {}\nfinish {:?} {:?}\n\
         completion {} eot {:?} thinking {:?} limit {}",
        out.prompt,
        out.prompt_token_ids,
        out.generation_prefix_tokens,
        out.segments,
        out.figures.len(),
        out.finish_reason,
        out.finish_detail,
        out.completion_tokens,
        out.end_of_turn,
        out.thinking_ended,
        out.tool_limit_reached,
    )
}

/// What the rows exercised, so that the comparison is not of rows without mechanics.
#[derive(Default, Debug)]
struct Seen {
    word_hints: usize,
    end_hints: usize,
    tool_calls: usize,
    limit_reached: usize,
    finish: std::collections::BTreeMap<String, usize>,
}

impl Seen {
    fn add(&mut self, out: &GenOutput) {
        for s in &out.segments {
            match s.hint.as_ref().map(|h| h.trigger) {
                Some(HintTrigger::Word) => self.word_hints += 1,
                Some(HintTrigger::EndOfThinking) => self.end_hints += 1,
                None => {}
            }
        }
        self.tool_calls += out.tool_calls.len();
        self.limit_reached += usize::from(out.tool_limit_reached);
        *self
            .finish
            .entry(format!("{:?}", out.finish_reason))
            .or_default() += 1;
    }
}

/// Runs `cases` on both backends with one configuration and compares row by row.
async fn compare(config: EngineConfig, cases: Vec<Req>, seen: &mut Seen) {
    let sb = sandbox().await;
    let llama = engine_on(Kind::Llama, config.clone(), Some(sb.clone())).await;
    let server = engine_on(Kind::OpenAi, config, Some(sb)).await;
    let mut waits = Vec::new();
    for req in &cases {
        waits.push((llama.submit(req.clone()), server.submit(req.clone())));
    }
    let mut mismatches = Vec::new();
    for (req, (a, b)) in cases.iter().zip(waits) {
        let a = a.await.unwrap().unwrap();
        let b = b.await.unwrap().unwrap();
        seen.add(&a);
        let (ra, rb) = (row(&a), row(&b));
        if ra != rb {
            let first = ra
                .lines()
                .zip(rb.lines())
                .position(|(x, y)| x != y)
                .unwrap_or(0);
            mismatches.push(format!(
                "seed {} {:?} max_new {} calls {} {:?}\nscript {:?}\nfirst differing line {first}:\n  in process: {}\n  on server:  {}",
                req.seed,
                req.mode,
                req.params.max_new_tokens,
                req.params.max_tool_calls,
                req.hints,
                req.opening.chars().take(300).collect::<String>(),
                ra.lines().nth(first).unwrap_or(""),
                rb.lines().nth(first).unwrap_or(""),
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} rows differ between the drivers:\n{}",
        mismatches.len(),
        cases.len(),
        mismatches.join("\n\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_streams_give_byte_identical_rows_on_both_drivers() {
    let seed = env_u64("START_SAME_ROWS_SEED", 0x5a3e_0f20);
    let n = env_u64("START_SAME_ROWS_CASES", 40);
    let mut dice = Dice(seed);
    // Half the cases with QwQ's thinking tags and a roomy context, half without tags in a
    // context small enough that the context limit and hints that do not fit come up.
    let mut thinking = EngineConfig::new(model());
    thinking.slots = 4;
    thinking.tir.think_prefix = "<think>\n".into();
    thinking.tir.think_end = Some("</think>".into());
    thinking.tir.ctx_per_slot = 1024;
    let mut tight = EngineConfig::new(model());
    tight.slots = 4;
    tight.tir.ctx_per_slot = 200;
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for i in 0..n {
        let req = case(&mut dice, i);
        if i % 2 == 0 {
            a.push(req);
        } else {
            b.push(req);
        }
    }
    let mut seen = Seen::default();
    compare(thinking, a, &mut seen).await;
    compare(tight, b, &mut seen).await;
    eprintln!("{n} cases, identical on both drivers: {seen:?}");
    // At the default size every mechanic comes up (a smaller run need not show each).
    if n >= 24 {
        assert!(seen.word_hints > 0 && seen.end_hints > 0, "{seen:?}");
        assert!(seen.tool_calls > 0 && seen.limit_reached > 0, "{seen:?}");
        for reason in ["Stop", "MaxNewTokens", "Context"] {
            assert!(seen.finish.contains_key(reason), "no {reason}: {seen:?}");
        }
    }
}
