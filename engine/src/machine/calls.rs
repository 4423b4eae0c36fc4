//! A trajectory's tool calls as its row records them: the request a closed block becomes (its
//! tool's language, the problem's files, the limits), and its result, failure and figures
//! written into the call. [`execute`] is the one piece with I/O, shared by both drivers.
//!
//! A block the sandbox could not run (its runners failed twice: [`ToolOutcome`]'s `Err`) is
//! not the model's doing and never becomes an output block: the trajectory ends with
//! `finish_reason = error` and the cause as its `finish_detail`, and export leaves it out.

use crate::config::TirConfig;
use crate::tool;
use start_sandbox::{ExecRequest, ExecResult, Sandbox, SandboxFile};
use start_schemas::tool::ToolName;
use start_schemas::trajectory::{Figure, ToolCall};
use std::time::Instant;

/// What a tool call came back with: the block's result (its own errors, time-outs and memory
/// kills included), or why the sandbox could not run it.
pub(crate) type ToolOutcome = Result<ExecResult, String>;

/// A call to `tool` on code segment `segment`, its result still to come.
pub(super) fn pending(segment: usize, tool: ToolName) -> ToolCall {
    ToolCall {
        segment: segment as u32,
        tool: tool.as_str().to_string(),
        exit_code: None,
        timed_out: false,
        memory_exceeded: false,
        truncated: false,
        duration_ms: 0.0,
        error: None,
    }
}

/// The sandbox request for one block of `tool`, with the problem's files, under the limits.
pub(super) fn request(
    tool: ToolName,
    code: String,
    files: &[SandboxFile],
    cfg: &TirConfig,
) -> ExecRequest {
    ExecRequest {
        language: tool::of(tool).language,
        files: files.to_vec(),
        timeout: cfg.tool_timeout,
        memory_mb: cfg.tool_memory_mb,
        max_output_bytes: cfg.max_output_chars,
        ..ExecRequest::new(code)
    }
}

/// Writes an infrastructure failure into its tool call (no exit code: the block never ran
/// to an end) and returns the trajectory's `finish_detail`.
pub(super) fn record_failure(call: &mut ToolCall, cause: &str, ms: f64) -> String {
    call.duration_ms = ms;
    call.error = Some(cause.to_string());
    format!("sandbox: {cause}")
}

/// Writes a result into its tool call.
pub(super) fn record_result(call: &mut ToolCall, result: &ExecResult, ms: f64) {
    call.exit_code = result.exit_code;
    call.timed_out = result.timed_out;
    call.memory_exceeded = result.memory_exceeded;
    call.truncated = result.truncated;
    call.duration_ms = ms;
    call.error = result.error.clone();
}

/// The figures of a result, as the row keeps them: on the code segment that drew them.
pub(super) fn figures_of(result: &ExecResult, segment: u32) -> impl Iterator<Item = Figure> + '_ {
    result.figures.iter().enumerate().map(move |(i, f)| Figure {
        segment,
        index: i as u32,
        width: f.width,
        height: f.height,
        size: f.png.len() as u64,
        png: f.png.clone(),
    })
}

/// Runs one block on `sandbox` and says how long it took, in milliseconds. Without a sandbox,
/// or when the sandbox fails (after its retry), the outcome is the cause, logged here.
pub(crate) async fn execute(sandbox: Option<&Sandbox>, request: ExecRequest) -> (ToolOutcome, f64) {
    let started = Instant::now();
    let outcome = match sandbox {
        Some(sb) => sb.execute(request).await.map_err(|e| e.to_string()),
        None => Err("no sandbox is configured".to_string()),
    };
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    match &outcome {
        Err(error) => tracing::warn!(%error, ms, "the sandbox could not run a block"),
        Ok(result) => tracing::debug!(
            exit_code = ?result.exit_code,
            timed_out = result.timed_out,
            memory_exceeded = result.memory_exceeded,
            ms,
            "tool call done"
        ),
    }
    (outcome, ms)
}
