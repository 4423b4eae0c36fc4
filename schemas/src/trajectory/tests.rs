//! Round trips of rows through Arrow and serde, and the row's own checks.

use super::*;

pub(crate) fn sample(i: u32) -> Trajectory {
    let segments = vec![
        Segment::new(SegmentKind::Reasoning, "Let me compute.\n", vec![1, 2, 3]),
        Segment {
            hint: Some(HintOrigin {
                kind: "general".into(),
                trigger: HintTrigger::Word,
                replaced: "Wait".into(),
            }),
            ..Segment::new(
                SegmentKind::Hint,
                "Wait, maybe using Python here is a good idea.\n```python\n",
                vec![4, 5],
            )
        },
        Segment::new(SegmentKind::Code, "print(2**10)\n```\n", vec![6, 7, 8]),
        Segment::new(SegmentKind::Output, "```output\n1024\n```\n", vec![9]),
        Segment::new(
            SegmentKind::Answer,
            format!("The answer is \\boxed{{{}}}.", 1024 + i),
            vec![10, 11],
        ),
    ];
    let full_text: String = segments.iter().map(|s| s.text.as_str()).collect();
    Trajectory {
        job_id: "job-1".into(),
        problem_id: format!("p{i}"),
        sample_index: i,
        source: "math".into(),
        kind: ProblemKind::Math,
        mode: Mode::HintInfer,
        model_name: "m.gguf".into(),
        model_sha256: "ab".repeat(32),
        backend: "llama.cpp".into(),
        model_identity: None,
        token_ids_source: "engine".into(),
        params: GenerationParams {
            temperature: 0.6,
            top_k: 0,
            top_p: 0.95,
            min_p: 0.0,
            repeat_penalty: 1.0,
            max_new_tokens: 4096,
            max_tool_calls: 6,
            seed: 7,
        },
        seed: 7_000 + u64::from(i),
        prompt: "<|im_start|>user\nWhat is 2^10?<|im_end|>\n<|im_start|>assistant\n<think>\n"
            .into(),
        prompt_token_ids: vec![1, 2, 3, 4],
        generation_prefix_tokens: 1,
        user_message: "What is 2^10?".into(),
        generation_prefix: "<think>\n".into(),
        trajectory_sha256: Trajectory::compute_sha256(&full_text),
        full_text,
        segments,
        tool_calls: vec![ToolCall {
            segment: 2,
            tool: "python".into(),
            exit_code: Some(0),
            timed_out: false,
            memory_exceeded: false,
            truncated: false,
            duration_ms: 12.5,
            error: None,
        }],
        tools: vec!["python".into(), "sql".into()],
        figures: vec![Figure {
            segment: 2,
            index: 0,
            width: 2,
            height: 1,
            size: 9,
            png: b"\x89PNG\r\n\x1a\n\x00".to_vec(),
        }],
        tool_errors: 0,
        finish_reason: FinishReason::Stop,
        finish_detail: None,
        end_of_turn: Some("<|im_end|>".into()),
        end_of_turn_token: Some(2),
        tool_limit_reached: false,
        hint_settings: Some(HintSettings::from_proto(None, 0.15)),
        hint_library_sha256: "cd".repeat(32),
        sandbox: "process:python3".into(),
        final_answer: Some("1024".into()),
        correct: i.is_multiple_of(2).then_some(true),
        score: Some(1.0),
        grading_detail: None,
        choice_permutation: None,
        prompt_tokens: 20,
        completion_tokens: 11,
        wall_time_s: 1.25,
        worker_id: "w-1".into(),
        created_at: DateTime::from_timestamp_micros(1_790_000_000_123_456).unwrap(),
    }
}

#[test]
fn rows_survive_a_record_batch_round_trip() {
    let rows: Vec<_> = (0..3).map(sample).collect();
    let batch = to_record_batch(&rows).unwrap();
    assert_eq!(batch.num_rows(), 3);
    assert_eq!(batch.schema(), schema());
    assert_eq!(from_record_batch(&batch).unwrap(), rows);
}

/// Every float (and every other value) comes back from a record batch bit for bit: a tool
/// call measured at 15.642812999999999 ms once came back as 15.642813 through a text
/// form. Random values over the whole range, subnormals and extremes included.
#[test]
fn every_value_survives_a_record_batch_exactly() {
    let mut state = 0x5eed_u64;
    let mut next = || crate::problem::splitmix64(&mut state);
    let mut floats: Vec<f64> = vec![
        15.642812999999999,
        0.1 + 0.2,
        f64::MIN_POSITIVE,
        5e-324,
        f64::MAX,
        -0.0,
        1e300,
    ];
    floats.extend(
        (0..2000)
            .map(|_| f64::from_bits(next()))
            .filter(|f| f.is_finite()),
    );
    floats.extend((0..2000).map(|_| (next() % 1_000_000_000) as f64 / 1e6));
    let rows: Vec<Trajectory> = floats
        .chunks(3)
        .enumerate()
        .map(|(i, f)| {
            let mut row = sample(i as u32);
            row.tool_calls[0].duration_ms = f[0];
            row.wall_time_s = f[f.len() - 1];
            row.params.temperature = f32::from_bits(next() as u32 & 0x7f7f_ffff);
            row.score = Some(f32::from_bits(next() as u32) % 1.0).filter(|s| *s >= 0.0);
            row.seed = next();
            row.params.seed = u64::MAX - i as u64;
            row
        })
        .collect();
    let back = from_record_batch(&to_record_batch(&rows).unwrap()).unwrap();
    assert_eq!(back.len(), rows.len());
    for (a, b) in rows.iter().zip(&back) {
        assert_eq!(
            a.tool_calls[0].duration_ms.to_bits(),
            b.tool_calls[0].duration_ms.to_bits()
        );
        assert_eq!(a.wall_time_s.to_bits(), b.wall_time_s.to_bits());
        assert_eq!(
            a.params.temperature.to_bits(),
            b.params.temperature.to_bits()
        );
        assert_eq!(a, b);
    }
    assert!(from_record_batch(&to_record_batch(&[]).unwrap())
        .unwrap()
        .is_empty());
}

#[test]
fn a_figure_written_as_hex_text_by_an_older_version_reads_as_its_bytes() {
    let mut json = serde_json::to_value(sample(0)).unwrap();
    json["figures"][0]["png"] = serde_json::json!(hex::encode(b"\x89PNG\r\n\x1a\n\x00"));
    let row: Trajectory = serde_json::from_value(json).unwrap();
    assert_eq!(row.figures[0].png, b"\x89PNG\r\n\x1a\n\x00");
}

#[test]
fn names_match_the_serialised_form() {
    for m in [Mode::HintInfer, Mode::Rft, Mode::Plain] {
        assert_eq!(serde_json::to_value(m).unwrap(), m.as_str());
    }
    for f in [
        FinishReason::Stop,
        FinishReason::MaxNewTokens,
        FinishReason::Context,
        FinishReason::ToolLimit,
        FinishReason::OutputLimit,
        FinishReason::Error,
    ] {
        assert_eq!(serde_json::to_value(f).unwrap(), f.as_str());
    }
}

#[test]
fn check_catches_inconsistent_rows() {
    let ok = sample(0);
    assert_eq!(ok.check(), Ok(()));
    let mut bad = ok.clone();
    bad.full_text.push('x');
    assert!(bad.check().unwrap_err().contains("concatenation"));
    let mut bad = ok.clone();
    bad.tool_errors = 1;
    assert!(bad.check().unwrap_err().contains("tool_errors"));
    let mut bad = ok.clone();
    bad.tool_calls[0].segment = 0;
    assert!(bad.check().unwrap_err().contains("not a code segment"));
    let mut bad = ok.clone();
    bad.figures[0].segment = 4;
    assert!(bad
        .check()
        .unwrap_err()
        .contains("not the segment of a tool call"));
    let mut bad = ok;
    bad.figures[0].size = 1;
    assert!(bad.check().unwrap_err().contains("not the PNG's size"));
}
