//! Checking what clients send: job specs and inline problems get the same scrutiny as files,
//! with every error naming its place (`spec.params.top_p`, `submit:message 3 problem 17`);
//! the files the problems attach are assembled from their pieces and checked against what
//! each problem says of them.

use start_schemas::attachment::MAX_FILE_BYTES;
use start_schemas::problem::{Problem, ProblemKind};
use start_schemas::proto;
use start_schemas::rows::{Diagnostic, Location, Position};
use start_schemas::tool::ToolSet;
use start_schemas::validate::Checker;
use std::collections::{HashMap, HashSet};

/// Most problem diagnostics returned in one refusal; the count of the rest is added.
const MAX_REPORTED: usize = 20;

/// Most bytes of attached files one submission may send (they are held until the job is
/// stored).
pub const MAX_SUBMISSION_FILE_BYTES: u64 = 1 << 30;

/// Checks a job spec; returns every problem found as `field: message`.
pub fn check_spec(spec: &proto::JobSpec) -> Vec<String> {
    let mut errors = Vec::new();
    let mut err = |field: &str, message: String| errors.push(format!("spec.{field}: {message}"));
    if proto::GenerationMode::try_from(spec.mode).unwrap_or_default()
        == proto::GenerationMode::Unspecified
    {
        err(
            "mode",
            "missing or unknown; expected hint-infer, rft, plain or judge".into(),
        );
    }
    match &spec.params {
        None => err("params", "missing".into()),
        Some(p) => {
            if !p.temperature.is_finite() || p.temperature < 0.0 || p.temperature > 5.0 {
                err(
                    "params.temperature",
                    format!("{} is not in [0, 5]", p.temperature),
                );
            }
            if !(p.top_p > 0.0 && p.top_p <= 1.0) {
                err("params.top_p", format!("{} is not in (0, 1]", p.top_p));
            }
            if !(0.0..1.0).contains(&p.min_p) {
                err("params.min_p", format!("{} is not in [0, 1)", p.min_p));
            }
            if !(p.repeat_penalty > 0.0 && p.repeat_penalty <= 10.0) {
                err(
                    "params.repeat_penalty",
                    format!("{} is not in (0, 10]", p.repeat_penalty),
                );
            }
            if p.max_new_tokens == 0 || p.max_new_tokens > 1 << 20 {
                err(
                    "params.max_new_tokens",
                    format!("{} is not in [1, 1048576]", p.max_new_tokens),
                );
            }
            if p.max_tool_calls > 64 {
                err(
                    "params.max_tool_calls",
                    format!("{} is more than 64", p.max_tool_calls),
                );
            }
            if p.samples == 0 || p.samples > 1024 {
                err(
                    "params.samples",
                    format!("{} is not in [1, 1024]", p.samples),
                );
            }
        }
    }
    if spec.unit_size == 0 || spec.unit_size > 100_000 {
        err(
            "unit_size",
            format!("{} is not in [1, 100000]", spec.unit_size),
        );
    }
    if spec.output_uri.trim().is_empty() {
        err(
            "output_uri",
            "missing: name the dataset directory in the shared store".into(),
        );
    } else if spec.output_uri.split('/').any(|c| c == "..") {
        err(
            "output_uri",
            format!("{:?} must not contain '..'", spec.output_uri),
        );
    }
    if spec.problems_uri.split('/').any(|c| c == "..") {
        err(
            "problems_uri",
            format!("{:?} must not contain '..'", spec.problems_uri),
        );
    }
    if let Some(h) = &spec.hints {
        if let Some(p) = h.trigger_probability {
            if !(0.0..=1.0).contains(&p) {
                err("hints.trigger_probability", format!("{p} is not in [0, 1]"));
            }
        }
        for (field, value) in [
            ("hints.max_trigger_hints", h.max_trigger_hints),
            ("hints.end_hints", h.end_hints),
            ("hints.min_tool_calls_left", h.min_tool_calls_left),
        ] {
            if value.is_some_and(|v| v > 64) {
                err(field, format!("{} is more than 64", value.unwrap_or(0)));
            }
        }
        if h.min_context_left.is_some_and(|v| v > 1 << 20) {
            err(
                "hints.min_context_left",
                format!("{} is more than 1048576", h.min_context_left.unwrap_or(0)),
            );
        }
    }
    if !matches!(spec.hint_library.as_str(), "" | "builtin") {
        err(
            "hint_library",
            format!(
                "{:?} is unknown; the only library is \"builtin\"",
                spec.hint_library
            ),
        );
    }
    let sha = &spec.model_sha256;
    if !(sha.is_empty() || sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit())) {
        err("model_sha256", "must be 64 hex digits or empty".into());
    }
    if let Err(e) = ToolSet::from_names(&spec.tools) {
        err("tools", e);
    }
    errors
}

/// Collects a job's problems, checking each like a file row and refusing duplicates, and the
/// files they attach.
pub struct ProblemIntake {
    checker: Checker,
    problems: Vec<(Problem, Location)>,
    diagnostics: Vec<Diagnostic>,
    message: u64,
    /// Attached files received as pieces, by sha256: (their size, the bytes so far).
    files: HashMap<String, (u64, Vec<u8>)>,
    /// Bytes of attached files announced so far (sizes of the files begun).
    file_bytes: u64,
}

impl Default for ProblemIntake {
    fn default() -> Self {
        Self::new()
    }
}

impl ProblemIntake {
    /// An empty intake.
    pub fn new() -> Self {
        Self {
            checker: Checker::default(),
            problems: Vec::new(),
            diagnostics: Vec::new(),
            message: 0,
            files: HashMap::new(),
            file_bytes: 0,
        }
    }

    /// Checks one streamed batch; rows are located as `submit:message M` plus the problem index.
    /// Files a problem carries inline are checked here; the others come as pieces
    /// ([`ProblemIntake::add_chunk`]) or are in the dataset store already.
    pub fn add_batch(&mut self, batch: &proto::ProblemBatch) {
        self.message += 1;
        for (i, wire) in batch.problems.iter().enumerate() {
            let location = Location {
                file: format!("submit:message {} problem", self.message),
                at: Position::Row(i as u64),
            };
            let row = wire.to_row();
            let diagnostics = &mut self.diagnostics;
            let mut accepted = None;
            self.checker.check_value(
                &row,
                &location,
                &mut |d| diagnostics.push(d.clone()),
                &mut |p| accepted = Some(p),
            );
            let Some(mut problem) = accepted else {
                continue;
            };
            let errors = problem.load_inline_files(wire);
            for (field, message) in &errors {
                self.diagnostics.push(Diagnostic::new(
                    location.clone(),
                    field.as_str(),
                    message.as_str(),
                ));
            }
            if errors.is_empty() {
                self.problems.push((problem, location));
            }
        }
    }

    /// Takes one piece of an attached file; pieces of a file come in order. An error says
    /// which file and what is wrong.
    pub fn add_chunk(&mut self, chunk: &proto::FileChunk) -> Result<(), String> {
        let sha = chunk.sha256.to_ascii_lowercase();
        let at = format!("submit: file {sha}");
        if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("{at}: sha256 must be 64 hex digits"));
        }
        if chunk.size > MAX_FILE_BYTES {
            return Err(format!(
                "{at}: {} bytes, over the {} MiB limit for an attached file",
                chunk.size,
                MAX_FILE_BYTES >> 20
            ));
        }
        if !self.files.contains_key(&sha) {
            if chunk.offset != 0 {
                return Err(format!(
                    "{at}: its first piece is at offset {}, not 0",
                    chunk.offset
                ));
            }
            self.file_bytes += chunk.size;
            if self.file_bytes > MAX_SUBMISSION_FILE_BYTES {
                return Err(format!(
                    "{at}: the job's files pass the {} MiB one submission may send",
                    MAX_SUBMISSION_FILE_BYTES >> 20
                ));
            }
        }
        let (size, data) = self
            .files
            .entry(sha)
            .or_insert_with(|| (chunk.size, Vec::with_capacity(chunk.size as usize)));
        if chunk.size != *size {
            return Err(format!(
                "{at}: a piece says the file has {} bytes, an earlier one {size}",
                chunk.size
            ));
        }
        if chunk.offset != data.len() as u64 {
            return Err(format!(
                "{at}: a piece at offset {} where {} bytes have come (pieces come in order, once)",
                chunk.offset,
                data.len()
            ));
        }
        if data.len() as u64 + chunk.data.len() as u64 > *size {
            return Err(format!("{at}: more bytes than the {size} the file has"));
        }
        data.extend_from_slice(&chunk.data);
        Ok(())
    }

    /// Reads a problem file from the shared store, with its attached files beside it when
    /// `attachments` (a local store); without, they must come otherwise (pieces, or the
    /// dataset store).
    pub fn add_file(&mut self, path: &std::path::Path, attachments: bool) {
        let (problems, diagnostics) = (&mut self.problems, &mut self.diagnostics);
        let at = Location::file(path.display().to_string());
        let mut accept = |p: Problem| problems.push((p, at.clone()));
        let mut report = |d: &Diagnostic| diagnostics.push(d.clone());
        if attachments {
            self.checker.check_file(path, &mut report, &mut accept);
        } else {
            self.checker
                .check_file_without_attachments(path, &mut report, &mut accept);
        }
    }

    /// The problems, or the errors (at most [`MAX_REPORTED`], then a count). A file sent in
    /// pieces is given to each problem that names it, checked against what the problem says;
    /// a file named but neither sent nor inline is left without bytes (the dataset store may
    /// keep it: [`crate::inputs`] decides).
    pub fn finish(mut self) -> Result<Vec<Problem>, String> {
        let mut received = HashMap::new();
        for (sha, (size, data)) in std::mem::take(&mut self.files) {
            if data.len() as u64 != size {
                self.diagnostics.push(Diagnostic::new(
                    Location::file("submit"),
                    format!("file {sha}"),
                    format!("{} of its {size} bytes came", data.len()),
                ));
            }
            received.insert(sha, bytes::Bytes::from(data));
        }
        // Files whose bytes have been hashed: the other problems naming them are spared it.
        let mut hashed = HashSet::new();
        for (problem, location) in &mut self.problems {
            let id = problem.id.to_string();
            for (i, file) in problem.files.iter_mut().enumerate() {
                let Some(bytes) = received
                    .get(&file.sha256)
                    .filter(|_| file.content.is_none())
                else {
                    continue;
                };
                let loaded = if hashed.contains(&file.sha256) {
                    file.load_hashed(bytes.clone())
                } else {
                    file.load(bytes.clone())
                };
                if loaded.is_ok() {
                    hashed.insert(file.sha256.clone());
                }
                if let Err(e) = loaded {
                    self.diagnostics.push(Diagnostic::new(
                        location.clone(),
                        format!("files[{i}]"),
                        format!("problem {id:?}: file {}: {e}", file.name),
                    ));
                }
            }
        }
        if self.diagnostics.is_empty() {
            return Ok(self.problems.into_iter().map(|(p, _)| p).collect());
        }
        let mut text: Vec<String> = self
            .diagnostics
            .iter()
            .take(MAX_REPORTED)
            .map(ToString::to_string)
            .collect();
        if self.diagnostics.len() > MAX_REPORTED {
            text.push(format!(
                "... and {} more",
                self.diagnostics.len() - MAX_REPORTED
            ));
        }
        Err(text.join("\n"))
    }
}

/// Judge prompts and solvable problems never share a job: a judge job (mode `judge`) holds
/// judge prompts only, and every other mode none, so that no question is graded as a verdict
/// nor a verdict request run with tools and hints. The first offender is named.
pub fn check_mode_kinds(mode: proto::GenerationMode, problems: &[Problem]) -> Result<(), String> {
    let judge_mode = mode == proto::GenerationMode::Judge;
    match problems
        .iter()
        .find(|p| (p.kind() == ProblemKind::Judge) != judge_mode)
    {
        None => Ok(()),
        Some(p) if judge_mode => Err(format!(
            "problem {:?} is of kind {}: a judge job takes judge prompts only (startctl judge)",
            p.id.as_str(),
            p.kind()
        )),
        Some(p) => Err(format!(
            "problem {:?} is a judge prompt: submit it with mode judge",
            p.id.as_str()
        )),
    }
}

/// A fresh job id: `j` + UTC time + random hex; sortable by time and safe as a file stem.
pub fn new_job_id() -> String {
    let now = chrono::Utc::now();
    let mut seed = now.timestamp_nanos_opt().unwrap_or(0) as u64 ^ u64::from(std::process::id());
    format!(
        "j{}-{:06x}",
        now.format("%Y%m%d-%H%M%S"),
        start_schemas::problem::splitmix64(&mut seed) & 0xff_ffff
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good_spec() -> proto::JobSpec {
        proto::JobSpec {
            name: "t".into(),
            mode: proto::GenerationMode::Rft as i32,
            params: Some(proto::GenerationParams {
                temperature: 0.6,
                top_k: 0,
                top_p: 0.95,
                min_p: 0.0,
                repeat_penalty: 1.0,
                max_new_tokens: 256,
                max_tool_calls: 6,
                seed: 1,
                samples: 4,
            }),
            unit_size: 8,
            output_uri: "out/x".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_good_spec_passes_and_each_bad_field_is_named() {
        assert!(check_spec(&good_spec()).is_empty());
        let mut s = good_spec();
        s.mode = 0;
        s.params.as_mut().unwrap().top_p = 0.0;
        s.params.as_mut().unwrap().samples = 0;
        s.unit_size = 0;
        s.output_uri = "../etc".into();
        s.hint_library = "mine".into();
        s.hints = Some(proto::HintSettings {
            trigger_probability: Some(1.5),
            end_hints: Some(65),
            ..Default::default()
        });
        let errors = check_spec(&s);
        for field in [
            "spec.mode:",
            "spec.params.top_p:",
            "spec.params.samples:",
            "spec.unit_size:",
            "spec.output_uri:",
            "spec.hint_library:",
            "spec.hints.trigger_probability:",
            "spec.hints.end_hints:",
        ] {
            assert!(
                errors.iter().any(|e| e.starts_with(field)),
                "{field} in {errors:?}"
            );
        }
        let mut s = good_spec();
        s.params = None;
        assert_eq!(check_spec(&s), vec!["spec.params: missing".to_string()]);
    }

    #[test]
    fn inline_problems_are_located_and_duplicates_refused() {
        let ok = proto::Problem {
            id: "p1".into(),
            source: "aime".into(),
            kind: proto::ProblemKind::Math as i32,
            question: "1+1?".into(),
            answer: "2".into(),
            ..Default::default()
        };
        let mut no_kind = ok.clone();
        no_kind.id = "p2".into();
        no_kind.kind = 0;
        let mut intake = ProblemIntake::new();
        intake.add_batch(&proto::ProblemBatch {
            problems: vec![ok.clone()],
        });
        intake.add_batch(&proto::ProblemBatch {
            problems: vec![no_kind, ok],
        });
        let err = intake.finish().unwrap_err();
        assert!(err.contains("submit:message 2 problem:row 0"), "{err}");
        assert!(
            err.contains("submit:message 2 problem:row 1: id: duplicate id"),
            "{err}"
        );
    }

    #[test]
    fn units_keep_order_and_size() {
        let mut intake = ProblemIntake::new();
        let problems: Vec<proto::Problem> = (0..10)
            .map(|i| proto::Problem {
                id: format!("p{i}"),
                source: "math".into(),
                kind: proto::ProblemKind::Math as i32,
                question: format!("{i}+1?"),
                answer: format!("{}", i + 1),
                ..Default::default()
            })
            .collect();
        intake.add_batch(&proto::ProblemBatch { problems });
        let problems = intake.finish().unwrap();
        let units = crate::unit::split_units(&problems, 4);
        assert_eq!(
            units.iter().map(|u| u.problems.len()).collect::<Vec<_>>(),
            [4, 4, 2]
        );
        assert_eq!(units[2].problems[1].id, "p9");
        let id = new_job_id();
        assert!(id.starts_with('j') && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    }
}
