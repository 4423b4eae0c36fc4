//! The in-process engine's tool calls: a closed block goes to the sandbox while its slot waits
//! and the others keep decoding; the result comes back to the engine thread, which hands it to
//! the slot's core ([`crate::step::resume_after_tool`]).

use crate::machine::{execute, ToolOutcome};
use crate::slot::{Slot, State};
use start_sandbox::{ExecRequest, Sandbox};
use std::sync::mpsc;
use std::sync::Arc;

/// A finished tool call, sent back to the engine thread: the slot, the outcome, milliseconds.
pub(crate) type ToolDone = (usize, ToolOutcome, f64);

/// What running a block needs on the engine thread: the sandbox, the runtime its calls run
/// on, and where their results go.
pub(crate) struct Tools {
    pub sandbox: Option<Arc<Sandbox>>,
    pub runtime: tokio::runtime::Handle,
    pub tx: mpsc::Sender<ToolDone>,
}

/// Sends a closed block to the sandbox; slot `i` waits for its output.
pub(crate) fn run_tool(i: usize, slot: &mut Slot, request: ExecRequest, tools: &Tools) {
    slot.state = State::Tool;
    let calls = slot.machine.as_ref().map_or(0, |m| m.tool_calls_made());
    let span = tracing::info_span!(
        parent: &slot.span,
        "tool_call",
        call = calls.saturating_sub(1),
        slot = i
    );
    let tx = tools.tx.clone();
    let sandbox = tools.sandbox.clone();
    let work = async move {
        let (result, ms) = execute(sandbox.as_deref(), request).await;
        let _ = tx.send((i, result, ms));
    };
    tools
        .runtime
        .spawn(tracing::Instrument::instrument(work, span));
}
