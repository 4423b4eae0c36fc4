//! The core alone, on scripted token streams: no model, no server, no sandbox. A toy
//! vocabulary makes every byte a token (id = byte + 1000; the end of the turn is id 2), so
//! that a script is exactly the text the model "writes", and a scripted tool answers each block
//! with what a test says. Each test drives one mechanic of engine/README's "where hints go",
//! a limit or a finish reason, and checks the row.

use super::*;
use crate::hints::HintLibrary;
use start_sandbox::ExecResult;
use start_schemas::trajectory::GenerationParams;

const EOG: i32 = 2;

fn tokens_of(text: &str) -> Vec<(i32, Vec<u8>)> {
    text.bytes()
        .map(|b| (1000 + i32::from(b), vec![b]))
        .collect()
}

/// A library with one hint per kind of problem, each opening a Python block, and the
/// built-in trigger words.
fn library() -> HintLibrary {
    HintLibrary::builtin()
}

fn config(think_end: bool, ctx: u32) -> Arc<TirConfig> {
    Arc::new(TirConfig {
        ctx_per_slot: ctx,
        think_end: think_end.then(|| "</think>".to_string()),
        hints: library(),
        ..TirConfig::default()
    })
}

fn request(mode: Mode, max_new: u32, max_calls: u32) -> GenRequest {
    GenRequest {
        user_message: "q".into(),
        code_tests: None,
        mode,
        params: GenerationParams {
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            repeat_penalty: 1.0,
            max_new_tokens: max_new,
            max_tool_calls: max_calls,
            seed: 0,
        },
        seed: 11,
        hints: HintSettings {
            trigger_probability: 1.0,
            max_trigger_hints: 1,
            end_hints: 0,
            min_tool_calls_left: 1,
            min_context_left: 0,
            run_answer_code: false,
            show_calls_left: false,
        },
        tools: ToolSet::PYTHON,
        files: Vec::new(),
    }
}

/// A scripted driver: feeds the script token by token (`\u{0}` is the end of the turn),
/// answers blocks with `tool`, and records the code each block ran and every action.
struct Drive {
    m: Machine,
    codes: Vec<String>,
    resyncs: Vec<usize>,
    tool: fn(&str) -> ToolOutcome,
    reason: Option<FinishReason>,
}

fn echo(code: &str) -> ToolOutcome {
    Ok(ExecResult {
        stdout: format!("ran {}", code.trim()),
        exit_code: Some(0),
        ..ExecResult::default()
    })
}

impl Drive {
    fn new(cfg: Arc<TirConfig>, req: &GenRequest) -> Self {
        Self {
            m: Machine::new(cfg, req, 10),
            codes: Vec::new(),
            resyncs: Vec::new(),
            tool: echo,
            reason: None,
        }
    }

    /// Carries out actions until the core waits for a token; `false` once it finished.
    fn act(&mut self, mut action: Action) -> bool {
        loop {
            action = match action {
                Action::Sample => return true,
                Action::Resync { keep } => {
                    self.resyncs.push(keep);
                    return true;
                }
                Action::Finish(r) => {
                    self.reason = Some(r);
                    return false;
                }
                Action::Tokenize(text) => self.m.tokenized(tokens_of(&text)),
                Action::RunTool(req) => {
                    self.codes.push(req.code.clone());
                    let outcome = (self.tool)(&req.code);
                    self.m.tool_done(&outcome, 1.0)
                }
            };
        }
    }

    fn write(&mut self, script: &str) -> &mut Self {
        for b in script.bytes() {
            let action = if b == 0 {
                self.m.end_of_turn(Some((EOG, "<eot>".into())), true)
            } else {
                self.m.sampled(1000 + i32::from(b), &[b], &[])
            };
            if !self.act(action) {
                break;
            }
        }
        self
    }

    fn out(self) -> GenOutput {
        assert!(self.m.finished(), "the script did not end the trajectory");
        let reason = self.reason;
        let out = self.m.into_output(Prompt::default(), 0.0, "test");
        assert_eq!(Some(out.finish_reason), reason);
        let n: usize = out.segments.iter().map(|s| s.tokens.len()).sum();
        assert_eq!(n as u32, out.completion_tokens, "tokens add up");
        for s in &out.segments {
            let bytes: Vec<u8> = s.tokens.iter().map(|&t| (t - 1000) as u8).collect();
            assert_eq!(
                String::from_utf8_lossy(&bytes),
                s.text,
                "ids write the text"
            );
        }
        out
    }
}

fn kinds(out: &GenOutput) -> Vec<(SegmentKind, &str)> {
    out.segments
        .iter()
        .map(|s| (s.kind, s.text.as_str()))
        .collect()
}

fn run(cfg: Arc<TirConfig>, req: &GenRequest, script: &str) -> GenOutput {
    let mut d = Drive::new(cfg, req);
    d.write(script);
    d.out()
}

#[test]
fn the_end_of_the_turn_ends_a_plain_trajectory_and_is_recorded_not_kept() {
    let out = run(
        config(false, 4096),
        &request(Mode::Plain, 100, 4),
        "x = 4\0",
    );
    assert_eq!(kinds(&out), [(SegmentKind::Answer, "x = 4")]);
    assert_eq!(out.end_of_turn, Some((EOG, "<eot>".into())));
    assert_eq!(out.finish_reason, FinishReason::Stop);
    assert_eq!(out.thinking_ended, None);
}

#[test]
fn a_closed_block_runs_and_its_output_is_the_next_segment() {
    let mut d = Drive::new(config(true, 4096), &request(Mode::Plain, 200, 4));
    d.write("Let us see.\n```python\nprint(2)\n```\nSo 2.</think>2\0");
    assert_eq!(d.codes, ["print(2)\n"]);
    let out = d.out();
    assert_eq!(
        kinds(&out),
        [
            (SegmentKind::Reasoning, "Let us see.\n"),
            (SegmentKind::Code, "```python\nprint(2)\n```"),
            (SegmentKind::Output, "```output\nran print(2)\n```\n"),
            (SegmentKind::Reasoning, "\nSo 2.</think>"),
            (SegmentKind::Answer, "2"),
        ]
    );
    assert_eq!(out.tool_calls.len(), 1);
    assert_eq!(out.tool_calls[0].segment, 1);
    assert_eq!(out.tool_calls[0].exit_code, Some(0));
    assert_eq!(out.thinking_ended, Some(true));
}

#[test]
fn with_the_counter_on_each_output_ends_with_the_executions_left() {
    let block = "```python\nprint(1)\n```\n";
    let mut req = request(Mode::Rft, 400, 2);
    req.hints.show_calls_left = true;
    let mut d = Drive::new(config(false, 4096), &req);
    d.write(&format!("{block}{block}{block}done\0"));
    let out = d.out();
    let outputs: Vec<&str> = out
        .segments
        .iter()
        .filter(|s| s.kind == SegmentKind::Output)
        .map(|s| s.text.as_str())
        .collect();
    assert_eq!(
        outputs,
        [
            "```output\nran print(1)\n[1 code execution left]\n```\n",
            "```output\nran print(1)\n[no code executions left]\n```\n",
        ]
    );
    assert!(out.tool_limit_reached);
    // Off (the default), the output is the program's alone.
    let mut d = Drive::new(config(false, 4096), &request(Mode::Rft, 400, 2));
    d.write(&format!("{block}done\0"));
    let out = d.out();
    assert_eq!(out.segments[1].text, "```output\nran print(1)\n```\n");
}

#[test]
fn a_block_of_a_disabled_tool_stays_text() {
    let mut d = Drive::new(config(false, 4096), &request(Mode::Plain, 200, 4));
    d.write("```sql\nSELECT 1;\n```\nok\0");
    assert!(d.codes.is_empty());
    let out = d.out();
    assert_eq!(out.segments.len(), 1);
    assert!(out.tool_calls.is_empty());
}

#[test]
fn past_the_tool_limit_blocks_stay_text_and_the_limit_is_recorded() {
    let block = "```python\nprint(1)\n```\n";
    let mut d = Drive::new(config(false, 4096), &request(Mode::Plain, 400, 1));
    d.write(&format!("{block}{block}done\0"));
    assert_eq!(d.codes.len(), 1);
    let out = d.out();
    assert!(out.tool_limit_reached);
    assert_eq!(out.tool_calls.len(), 1);
    let code = out.segments.iter().filter(|s| s.kind == SegmentKind::Code);
    assert_eq!(code.count(), 1, "the second block is not a code segment");
}

#[test]
fn code_in_the_final_answer_runs_only_when_the_job_asks() {
    let script = "ok</think>```python\nprint(3)\n```\0";
    let mut req = request(Mode::Plain, 200, 4);
    let mut d = Drive::new(config(true, 4096), &req);
    d.write(script);
    assert!(d.codes.is_empty());
    assert!(
        !d.out().tool_limit_reached,
        "an answer's block is not the limit"
    );
    req.hints.run_answer_code = true;
    let mut d = Drive::new(config(true, 4096), &req);
    d.write(script);
    assert_eq!(d.codes, ["print(3)\n"]);
}

#[test]
fn a_trigger_word_is_rolled_out_and_its_hint_opens_the_code_the_model_writes() {
    let mut d = Drive::new(config(true, 4096), &request(Mode::HintInfer, 300, 4));
    d.write("So 91 = 7 * 13. Wait,");
    // The hint went in where "Wait" began (a token of its own here, so the space before it
    // stays in the reasoning; a " Wait" token's space goes into the hint), and opened a block.
    let hint_at = d.resyncs[0];
    d.write("print(7*13)\n```\nYes.</think>91\0");
    assert_eq!(d.codes, ["print(7*13)\n"]);
    let out = d.out();
    let k = kinds(&out);
    assert_eq!(k[0], (SegmentKind::Reasoning, "So 91 = 7 * 13. "));
    assert_eq!(k[1].0, SegmentKind::Hint);
    assert!(k[1].1.ends_with("```python\n"), "{k:?}");
    let origin = out.segments[1].hint.as_ref().unwrap();
    assert_eq!(origin.trigger, HintTrigger::Word);
    assert_eq!(origin.replaced, "Wait,");
    assert_eq!(hint_at, "So 91 = 7 * 13. ".len());
    // The tokens after the word and the comma that ended it are the code's.
    assert_eq!(k[2], (SegmentKind::Code, "print(7*13)\n```"));
    let generated: String = out
        .segments
        .iter()
        .filter(|s| s.kind != SegmentKind::Hint)
        .map(|s| s.text.as_str())
        .collect();
    assert!(!generated.contains("Wait"), "the word left the row");
}

fn full(out: &GenOutput) -> String {
    out.segments.iter().map(|s| s.text.as_str()).collect()
}

#[test]
fn trigger_hints_are_capped_and_need_tool_calls_and_room_left() {
    let script = "A. Wait, b. Wait, c.\0";
    let hints = |req: &GenRequest, ctx: u32| {
        let out = run(config(false, ctx), req, script);
        out.segments
            .iter()
            .filter(|s| s.kind == SegmentKind::Hint)
            .count()
    };
    let req = request(Mode::HintInfer, 300, 4);
    assert_eq!(hints(&req, 4096), 1, "the cap of one");
    let mut more = req.clone();
    more.hints.max_trigger_hints = 5;
    more.params.max_tool_calls = 0;
    assert_eq!(hints(&more, 4096), 0, "no tool call left");
    let mut roomy = req.clone();
    roomy.hints.min_context_left = 4000;
    assert_eq!(hints(&roomy, 4096), 0, "not enough room left");
    let mut plain = req.clone();
    plain.mode = Mode::Plain;
    assert_eq!(hints(&plain, 4096), 0, "plain mode");
    let mut never = req;
    never.hints.trigger_probability = 0.0;
    assert_eq!(hints(&never, 4096), 0, "the dice");
}

#[test]
fn a_hint_without_room_is_left_out_and_generation_goes_on() {
    // The built-in hints are longer than 40 tokens; 10 of prompt and a few of text leave less.
    let out = run(
        config(false, 60),
        &request(Mode::HintInfer, 300, 4),
        "A. Wait, b\0",
    );
    assert!(out.segments.iter().all(|s| s.kind != SegmentKind::Hint));
    assert_eq!(full(&out), "A. Wait, b");
}

#[test]
fn the_end_of_thinking_is_rolled_back_and_replaced_while_end_hints_last() {
    let mut req = request(Mode::HintInfer, 400, 4);
    req.hints.end_hints = 1;
    req.hints.max_trigger_hints = 0;
    let mut d = Drive::new(config(true, 4096), &req);
    d.write("So 5.</think>");
    d.write("print(5)\n```\nSure.</think>5\0");
    let out = d.out();
    let k = kinds(&out);
    assert_eq!(k[0], (SegmentKind::Reasoning, "So 5."));
    assert_eq!(k[1].0, SegmentKind::Hint);
    assert!(
        k[1].1.starts_with("\n\n"),
        "a blank line before a hint mid-line"
    );
    let origin = out.segments[1].hint.as_ref().unwrap();
    assert_eq!(origin.trigger, HintTrigger::EndOfThinking);
    assert_eq!(origin.replaced, "</think>");
    assert_eq!(out.tool_calls.len(), 1);
    // The second end stands: the answer after it is the answer.
    assert_eq!(k.last().unwrap(), &(SegmentKind::Answer, "5"));
    assert_eq!(full(&out).matches("</think>").count(), 1);
}

#[test]
fn an_end_hint_replaces_the_end_of_the_turn_but_never_inside_a_code_block() {
    let mut req = request(Mode::HintInfer, 400, 4);
    req.hints.end_hints = 2;
    req.hints.max_trigger_hints = 0;
    let mut d = Drive::new(config(false, 4096), &req);
    d.write("It is 6.\n\0");
    assert_eq!(d.resyncs.len(), 1, "the end of the turn became a hint");
    d.write("print(6)\n```\nok\0print(1)\n```\nend\0");
    let out = d.out();
    let origin = out.segments[1].hint.as_ref().unwrap();
    assert_eq!(origin.replaced, "<eot>");
    assert!(
        !out.segments[1].text.starts_with('\n'),
        "a hint at a line's start needs no blank line"
    );
    // The second end of the turn got the second hint; the third ends the turn.
    let hints = out.segments.iter().filter(|s| s.kind == SegmentKind::Hint);
    assert_eq!(hints.count(), 2);

    // Inside a block the model cannot be told to write code: its end stands.
    let mut d = Drive::new(config(false, 4096), &req);
    d.write("```python\nprint(1)\0");
    let out = d.out();
    assert_eq!(out.finish_reason, FinishReason::Stop);
    assert!(out.segments.iter().all(|s| s.kind != SegmentKind::Hint));
}

#[test]
fn limits_end_the_trajectory_with_their_reason() {
    let out = run(
        config(false, 4096),
        &request(Mode::Plain, 5, 4),
        "abcdefgh\0",
    );
    assert_eq!(out.finish_reason, FinishReason::MaxNewTokens);
    assert_eq!(out.completion_tokens, 5);
    // 10 prompt tokens in a context of 20: a token is fed while one more fits after it.
    let out = run(
        config(false, 20),
        &request(Mode::Plain, 100, 4),
        "abcdefghijklmn\0",
    );
    assert_eq!(out.finish_reason, FinishReason::Context);
    assert_eq!(out.completion_tokens, 9);
    // A tool's output that does not fit ends the trajectory with `context`.
    let mut d = Drive::new(config(false, 40), &request(Mode::Plain, 100, 4));
    d.write("```python\nx\n```");
    let out = d.out();
    assert_eq!(out.finish_reason, FinishReason::Context);
    assert_eq!(out.tool_calls.len(), 1, "the call is recorded");
}

#[test]
fn room_is_what_the_limits_leave_and_never_zero_while_waiting() {
    let mut d = Drive::new(config(false, 30), &request(Mode::Plain, 50, 4));
    assert_eq!(d.m.room(), 19, "30 - 10 prompt - 1");
    d.write("abc");
    assert_eq!(d.m.room(), 16);
    let mut d = Drive::new(config(false, 4096), &request(Mode::Plain, 5, 4));
    d.write("ab");
    assert_eq!(d.m.room(), 3);
    // Sampling exactly `room` tokens ends the trajectory on a limit.
    d.write("cde");
    assert!(d.m.finished());
}

#[test]
fn a_block_the_sandbox_cannot_run_ends_with_error_and_its_cause() {
    let mut d = Drive::new(config(false, 4096), &request(Mode::Plain, 100, 4));
    d.tool = |_| Err("runner lost twice".into());
    d.write("```python\nprint(1)\n```\nmore");
    let out = d.out();
    assert_eq!(out.finish_reason, FinishReason::Error);
    assert_eq!(
        out.finish_detail.as_deref(),
        Some("sandbox: runner lost twice")
    );
    assert_eq!(
        out.tool_calls[0].error.as_deref(),
        Some("runner lost twice")
    );
    assert!(out.segments.iter().all(|s| s.kind != SegmentKind::Output));
}

#[test]
fn a_driver_stop_ends_with_its_reason_and_detail() {
    let mut d = Drive::new(config(false, 4096), &request(Mode::Plain, 100, 4));
    d.write("abc");
    let action =
        d.m.stop(FinishReason::Error, Some("the KV cache refused".into()));
    d.act(action);
    let out = d.out();
    assert_eq!(out.finish_detail.as_deref(), Some("the KV cache refused"));
    assert_eq!(out.completion_tokens, 3);
}

#[test]
fn the_hint_dice_follow_the_seed() {
    let mut req = request(Mode::HintInfer, 2000, 40);
    req.hints.trigger_probability = 0.5;
    req.hints.max_trigger_hints = 40;
    let script: String = (0..60).map(|i| format!("Step {i}. Wait, ")).collect();
    let rows = |seed: u64| {
        let mut r = req.clone();
        r.seed = seed;
        let mut d = Drive::new(config(false, 100_000), &r);
        d.write(&script);
        d.resyncs
    };
    assert_eq!(rows(3), rows(3));
    assert_ne!(rows(3), rows(4));
}

#[test]
fn a_text_only_token_with_extra_ids_keeps_its_ids_in_order() {
    let mut d = Drive::new(config(false, 4096), &request(Mode::Plain, 100, 4));
    let action = d.m.sampled(1000 + i32::from(b'a'), b"ab", &[7, 8]);
    assert_eq!(action, Action::Sample);
    assert_eq!(d.m.ids_from(0), [1000 + i32::from(b'a'), 7, 8]);
    assert_eq!(d.m.completion_len(), 3);
}
