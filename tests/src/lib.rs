//! Fixtures shared by start's integration tests.
//!
//! The trajectories built here are test fixtures for the formats (hand-made rows with known
//! values), not generated data: they exist so that a shard can be written and read back by
//! other readers with every value checked.

pub mod chromium;
pub mod grpc;
pub mod llama_server;
pub mod python;
pub mod redis;
pub mod s3;
pub mod server;
pub mod synthetic;
pub mod vllm;

use chrono::DateTime;
use start_schemas::problem::ProblemKind;
use start_schemas::trajectory::{
    FinishReason, GenerationParams, HintOrigin, HintSettings, HintTrigger, Mode, Segment,
    SegmentKind, ToolCall, Trajectory,
};

/// A fixture trajectory; `i` varies ids, kinds, verdicts, tool calls and token counts so that
/// every column holds more than one value and nulls appear where they may.
pub fn trajectory(i: u32) -> Trajectory {
    let kind = ProblemKind::ALL[i as usize % 3];
    let mut segments = vec![Segment::new(
        SegmentKind::Reasoning,
        format!("Problem {i}: let me think about it step by step.\n"),
        vec![100 + i as i32, 101, 102],
    )];
    let mut tool_calls = Vec::new();
    for call in 0..(i % 4) {
        segments.push(Segment {
            hint: Some(HintOrigin {
                kind: "complex_calculation".into(),
                trigger: if call == 0 {
                    HintTrigger::Word
                } else {
                    HintTrigger::EndOfThinking
                },
                replaced: if call == 0 { "Wait," } else { "<|im_end|>" }.into(),
            }),
            ..Segment::new(
                SegmentKind::Hint,
                "Wait, maybe using Python here is a good idea.\n```python\n",
                vec![200, 201],
            )
        });
        tool_calls.push(ToolCall {
            segment: segments.len() as u32,
            tool: "python".into(),
            exit_code: if call == 2 {
                None
            } else {
                Some(i32::from(call == 1))
            },
            timed_out: call == 2,
            memory_exceeded: false,
            truncated: call == 1,
            duration_ms: 10.0 + f64::from(call),
            error: None,
        });
        segments.push(Segment::new(
            SegmentKind::Code,
            format!("print({i} * {call})\n```\n"),
            vec![300, 301, 302 + call as i32],
        ));
        segments.push(Segment::new(
            SegmentKind::Output,
            format!("```output\n{}\n```\n", i * call),
            vec![400],
        ));
    }
    segments.push(Segment::new(
        SegmentKind::Answer,
        format!("So the answer is \\boxed{{{}}}. ünïcödé ✓", i * 7),
        vec![500, 501, 502, 503],
    ));
    let full_text: String = segments.iter().map(|s| s.text.as_str()).collect();
    let tool_errors = tool_calls.iter().filter(|c| c.failed()).count() as u32;
    let completion_tokens = segments.iter().map(|s| s.tokens.len() as u32).sum();
    Trajectory {
        job_id: "job-fixture".into(),
        problem_id: format!("problem-{}", i / 2),
        sample_index: i % 2,
        source: ["aime", "gpqa", "livecodebench"][i as usize % 3].into(),
        kind,
        mode: [Mode::HintInfer, Mode::Rft, Mode::Plain][i as usize % 3],
        model_name: "SmolLM2-135M-Instruct.Q4_1.gguf".into(),
        model_sha256: start_schemas::model::DEFAULT_MODEL_SHA256.into(),
        backend: "llama.cpp".into(),
        model_identity: None,
        token_ids_source: "engine".into(),
        params: GenerationParams {
            temperature: 0.6,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repeat_penalty: 1.1,
            max_new_tokens: 4096,
            max_tool_calls: 6,
            seed: 1234,
        },
        seed: 1_000_000 + u64::from(i),
        prompt: format!(
            "<|im_start|>user\nProblem {i}<|im_end|>\n<|im_start|>assistant\n<think>\n"
        ),
        prompt_token_ids: vec![1, 2, 3 + i as i32],
        generation_prefix_tokens: 1,
        user_message: format!("Problem {i}"),
        generation_prefix: "<think>\n".into(),
        trajectory_sha256: Trajectory::compute_sha256(&full_text),
        full_text,
        segments,
        tool_calls,
        tools: vec!["python".into()],
        figures: Vec::new(),
        tool_errors,
        finish_reason: if i % 5 == 4 {
            FinishReason::MaxNewTokens
        } else {
            FinishReason::Stop
        },
        finish_detail: None,
        end_of_turn: (i % 5 != 4).then(|| "<|im_end|>".into()),
        end_of_turn_token: (i % 5 != 4).then_some(2),
        tool_limit_reached: i % 4 == 3,
        hint_settings: i
            .is_multiple_of(2)
            .then(|| HintSettings::from_proto(None, 0.15)),
        hint_library_sha256: "ab".repeat(32),
        sandbox: "process:python3".into(),
        final_answer: (i % 5 != 4).then(|| (i * 7).to_string()),
        correct: match i % 3 {
            0 => Some(true),
            1 => Some(false),
            _ => None,
        },
        score: (i % 3 != 2).then_some(if i.is_multiple_of(3) { 1.0 } else { 0.25 }),
        grading_detail: (i % 3 == 1).then(|| r#"{"tests":[true,false,false,false]}"#.into()),
        choice_permutation: (kind == ProblemKind::Choice).then(|| vec![2, 0, 3, 1]),
        prompt_tokens: 20 + i,
        completion_tokens,
        wall_time_s: 0.5 + f64::from(i) / 8.0,
        worker_id: format!("worker-{}", i % 2),
        created_at: DateTime::from_timestamp_micros(1_795_000_000_000_000 + i64::from(i) * 1_001)
            .expect("in range"),
    }
}
