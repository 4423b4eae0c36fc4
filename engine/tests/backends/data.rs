//! Tools beyond Python on the real default model (run scripts/setup first): a SQL block over a
//! problem's attached data, a refused statement, a figure, a disabled tool, and the data hints,
//! on both backends. The opening of each trajectory is scripted; what follows is the model's.

use crate::common::*;
use start_engine::{EngineConfig, GenOutput};
use start_sandbox::SandboxFile;
use start_schemas::tool::{ToolName, ToolSet};
use start_schemas::trajectory::{Mode, SegmentKind};

fn sales() -> SandboxFile {
    SandboxFile::new(
        "sales.csv",
        &include_bytes!("../../../examples/data-analysis/sales.csv")[..],
    )
}

/// A plain-mode request on the sales table with both tools.
fn on_sales(opening: &str, seed: u64) -> Req {
    let mut req = request(
        "Which region sold the least in November 2024?",
        opening,
        Mode::Plain,
        160,
        seed,
    );
    req.tools = ToolSet::all();
    req.files = vec![sales()];
    req
}

/// The output segment right after code segment `code`.
fn output_after(out: &GenOutput, code: usize) -> &str {
    let next = &out.segments[code + 1];
    assert_eq!(next.kind, SegmentKind::Output, "{:?}", out.segments);
    &next.text
}

fn first_code(out: &GenOutput) -> usize {
    out.segments
        .iter()
        .position(|s| s.kind == SegmentKind::Code)
        .unwrap_or_else(|| panic!("no code segment: {:?}", out.segments))
}

async fn a_forced_sql_block_returns_rows_from_the_attached_data(kind: Kind) {
    let engine = engine_on(kind, EngineConfig::new(model()), Some(sandbox().await)).await;
    let out = run(
        &engine,
        on_sales(
            "Let me query the data.\n```sql\nSELECT region, SUM(revenue) AS revenue FROM sales\n\
             WHERE date LIKE '2024-11%' GROUP BY region ORDER BY revenue;\n```",
            21,
        ),
    )
    .await;
    let code = first_code(&out);
    assert!(
        out.segments[code].text.starts_with("```sql\n"),
        "{:?}",
        out.segments
    );
    assert_eq!(
        output_after(&out, code),
        "```output\nregion | revenue\n-------+--------\nNorth  | 51359\nWest   | 55486\n\
         East   | 63981\nSouth  | 72283\n(4 rows)\n```\n"
    );
    let call = &out.tool_calls[0];
    assert_eq!(
        (call.tool.as_str(), call.exit_code),
        ("sql", Some(0)),
        "{call:?}"
    );
    assert_eq!(call.segment as usize, code);
}

async fn a_refused_sql_statement_is_the_blocks_error(kind: Kind) {
    let engine = engine_on(kind, EngineConfig::new(model()), Some(sandbox().await)).await;
    let out = run(
        &engine,
        on_sales(
            "Let me keep a copy.\n```sql\nATTACH DATABASE '/tmp/copy.db' AS copy;\n```",
            22,
        ),
    )
    .await;
    let code = first_code(&out);
    let output = output_after(&out, code);
    assert!(
        output.starts_with("```output\nError in statement 1: refused: ATTACH"),
        "{output}"
    );
    let call = &out.tool_calls[0];
    assert_eq!(call.tool, "sql");
    assert_eq!(call.exit_code, Some(1), "{call:?}");
    assert_eq!(
        call.outcome(),
        start_schemas::trajectory::ToolOutcome::Error,
        "a tool error, not the sandbox's: {call:?}"
    );
    assert!(call.error.is_none(), "{call:?}");
}

async fn a_figure_is_captured_on_the_code_segment_that_drew_it(kind: Kind) {
    let engine = engine_on(
        kind,
        EngineConfig::new(model()),
        Some(docker_sandbox().await),
    )
    .await;
    let out = run(
        &engine,
        on_sales(
            "Let me plot it.\n```python\nimport pandas as pd\nimport matplotlib.pyplot as plt\n\
             df = pd.read_csv('sales.csv')\nm = df.groupby(df.date.str[:7]).revenue.sum()\n\
             m.plot(kind='bar'); plt.show()\nprint(m.idxmin(), m.min())\n```",
            23,
        ),
    )
    .await;
    let code = first_code(&out);
    assert_eq!(
        output_after(&out, code),
        "```output\n2024-11 243109\n[figure 1: 640x480 PNG]\n```\n"
    );
    assert_eq!(out.figures.len(), 1, "{:?}", out.figures);
    let fig = &out.figures[0];
    assert_eq!((fig.segment as usize, fig.index), (code, 0));
    assert_eq!((fig.width, fig.height), (640, 480));
    assert!(fig.png.starts_with(b"\x89PNG\r\n\x1a\n"));
    assert_eq!(fig.size, fig.png.len() as u64);
}

async fn a_block_of_a_disabled_tool_stays_text(kind: Kind) {
    let engine = engine_on(kind, EngineConfig::new(model()), Some(sandbox().await)).await;
    let mut req = on_sales(
        "Let me query.\n```sql\nSELECT COUNT(*) FROM sales;\n```",
        24,
    );
    req.tools = ToolSet::PYTHON;
    let out = run(&engine, req).await;
    assert!(out.tool_calls.is_empty(), "{:?}", out.tool_calls);
    assert!(
        out.segments.iter().all(|s| s.kind != SegmentKind::Code),
        "{:?}",
        out.segments
    );
    assert!(full_text(&out).contains("```sql\nSELECT COUNT(*) FROM sales;\n```"));
}

/// A problem with data in hint-infer mode gets a data hint, which opens the block of an enabled
/// tool, and that tool runs what the model writes.
async fn a_problem_with_data_gets_a_data_hint_that_opens_an_enabled_tool(kind: Kind) {
    let engine = engine_on(kind, EngineConfig::new(model()), Some(sandbox().await)).await;
    let library = start_engine::HintLibrary::builtin();
    for (tools, seed) in [(ToolSet::all(), 31), (ToolSet::of([ToolName::Sql]), 32)] {
        let mut req = on_sales("The North region. Wait,", seed);
        req.mode = Mode::HintInfer;
        req.hints.trigger_probability = 1.0;
        req.hints.min_context_left = 16;
        req.params.max_new_tokens = 64;
        req.tools = tools;
        let out = run(&engine, req).await;
        let hint = out
            .segments
            .iter()
            .find(|s| s.kind == SegmentKind::Hint)
            .unwrap_or_else(|| panic!("no hint: {:?}", out.segments));
        let origin = hint.hint.as_ref().expect("provenance");
        assert!(library.data.contains_key(&origin.kind), "{origin:?}");
        let opened = start_engine::fence::ends_with_open_fence(&hint.text).expect("opens a block");
        assert!(tools.contains(opened), "{opened:?} with {tools:?}");
        if let Some(call) = out.tool_calls.first() {
            assert_eq!(call.tool, opened.as_str(), "{call:?}");
        }
    }
}

on_both_backends!(
    a_forced_sql_block_returns_rows_from_the_attached_data,
    a_refused_sql_statement_is_the_blocks_error,
    a_figure_is_captured_on_the_code_segment_that_drew_it,
    a_block_of_a_disabled_tool_stays_text,
    a_problem_with_data_gets_a_data_hint_that_opens_an_enabled_tool,
);
