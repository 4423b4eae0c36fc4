//! Tool dispatch and resumption: a closed code block goes to the sandbox, as its tool's
//! language with the problem's files, while its slot waits and the others keep decoding; the
//! result comes back written the tool's way ([`crate::tool::Tool::output_block`]: truncated
//! to its limit, time-outs and memory kills marked, figures listed), the figures go on the
//! row, and the slot resumes.
//!
//! A block the sandbox could not run (its runners failed twice: [`ToolOutcome`]'s `Err`) is
//! not the model's doing and never becomes an output block: the trajectory ends with
//! `finish_reason = error` and the cause as its `finish_detail`, and export leaves it out.

use crate::insertion::record_insertion;
use crate::llama::Ctx;
use crate::slot::{finish, Slot, State};
use crate::tool;
use start_sandbox::{ExecRequest, ExecResult, Sandbox, SandboxFile};
use start_schemas::tool::ToolName;
use start_schemas::trajectory::{Figure, FinishReason, SegmentKind, ToolCall};
use std::collections::VecDeque;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Instant;

/// What a tool call came back with: the block's result (its own errors, time-outs and memory
/// kills included), or why the sandbox could not run it.
pub(crate) type ToolOutcome = Result<ExecResult, String>;

/// A finished tool call, sent back to the engine thread: the slot, the outcome, milliseconds.
pub(crate) type ToolDone = (usize, ToolOutcome, f64);

/// Sends a closed block to the sandbox; the slot waits for its output.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_tool(
    e: &Ctx,
    i: usize,
    slot: &mut Slot,
    closing_token: i32,
    tool: ToolName,
    code: String,
    sandbox: &Option<Arc<Sandbox>>,
    runtime: &tokio::runtime::Handle,
    tool_tx: &mpsc::Sender<ToolDone>,
) {
    slot.state = State::Tool(tool);
    // The closing token still has to be fed; it goes first when the output comes back.
    slot.pending_after_tool = Some(closing_token);
    slot.tool_calls
        .push(pending_call(slot.builder.segments.len() - 1, tool));
    let tx = tool_tx.clone();
    let sandbox = sandbox.clone();
    let request = exec_request(
        tool,
        code,
        &slot.files,
        e.config.tool_timeout,
        e.config.tool_memory_mb,
        e.config.max_output_chars,
    );
    let span = tracing::info_span!(
        parent: &slot.span,
        "tool_call",
        call = slot.tool_calls.len() - 1,
        slot = i
    );
    let work = async move {
        let (result, ms) = execute(sandbox.as_deref(), request).await;
        let _ = tx.send((i, result, ms));
    };
    runtime.spawn(tracing::Instrument::instrument(work, span));
}

/// Appends a tool call's result to its slot as an output block and resumes the slot; ends the
/// trajectory with `context` when the block does not fit the room left, and with `error` when
/// the sandbox could not run the block.
pub(crate) fn resume_after_tool(e: &Ctx, slot: &mut Slot, outcome: &ToolOutcome, ms: f64) {
    if slot.kv_lost {
        finish(e, slot, FinishReason::Error);
        return;
    }
    let State::Tool(tool) = slot.state else {
        return;
    };
    let Some(call) = slot.tool_calls.last_mut() else {
        return;
    };
    let result = match outcome {
        Ok(result) => result,
        Err(cause) => {
            slot.error_detail = Some(record_failure(call, cause, ms));
            finish(e, slot, FinishReason::Error);
            return;
        }
    };
    record_result(call, result, ms);
    let (block, truncated) =
        tool::of(tool).output_block(result, e.config.tool_timeout, e.config.max_output_chars);
    call.truncated |= truncated;
    let segment = call.segment;
    slot.figures.extend(figures_of(result, segment));
    let tokens = e.llama.tokenize(&block, false);
    let mut feed: VecDeque<(i32, SegmentKind)> = slot
        .pending_after_tool
        .take()
        .map(|t| (t, SegmentKind::Code))
        .into_iter()
        .collect();
    if !slot.fits(e.config.ctx_per_slot, feed.len(), tokens.len()) {
        finish(e, slot, FinishReason::Context);
        return;
    }
    feed.extend(record_insertion(e, slot, tokens, SegmentKind::Output));
    slot.state = State::Feed(feed);
}

/// The figures of a result, as the row keeps them: on the code segment that drew them.
pub(crate) fn figures_of(result: &ExecResult, segment: u32) -> impl Iterator<Item = Figure> + '_ {
    result.figures.iter().enumerate().map(move |(i, f)| Figure {
        segment,
        index: i as u32,
        width: f.width,
        height: f.height,
        size: f.png.len() as u64,
        png: f.png.clone(),
    })
}

/// The sandbox request for one block of `tool`, with the problem's files, under the engine's
/// limits.
pub(crate) fn exec_request(
    tool: ToolName,
    code: String,
    files: &[SandboxFile],
    timeout: std::time::Duration,
    memory_mb: u32,
    max_output_chars: usize,
) -> ExecRequest {
    ExecRequest {
        language: tool::of(tool).language,
        files: files.to_vec(),
        timeout,
        memory_mb,
        max_output_bytes: max_output_chars,
        ..ExecRequest::new(code)
    }
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

/// Writes an infrastructure failure into its tool call (no exit code: the block never ran
/// to an end) and returns the trajectory's `finish_detail`.
pub(crate) fn record_failure(call: &mut ToolCall, cause: &str, ms: f64) -> String {
    call.duration_ms = ms;
    call.error = Some(cause.to_string());
    format!("sandbox: {cause}")
}

/// A call to `tool` on code segment `segment`, its result still to come.
pub(crate) fn pending_call(segment: usize, tool: ToolName) -> ToolCall {
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

/// Writes a result into its tool call.
pub(crate) fn record_result(call: &mut ToolCall, result: &ExecResult, ms: f64) {
    call.exit_code = result.exit_code;
    call.timed_out = result.timed_out;
    call.memory_exceeded = result.memory_exceeded;
    call.truncated = result.truncated;
    call.duration_ms = ms;
    call.error = result.error.clone();
}
