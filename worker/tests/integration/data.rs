//! Problems with data through the worker's own pipeline, on the real default model and the
//! Docker sandbox, to rows on disk read back by pyarrow and DuckDB: the attached file reaches
//! every block, a Python block's figure and a SQL block's table land on the row, and the row
//! says which tools ran. The opening is scripted (the engine's test hook); the rest is the
//! model's.

use start_engine::script::Script;
use start_engine::{Backend, Engine, EngineConfig};
use start_grader::Grader;
use start_sandbox::{BackendKind, Sandbox, SandboxConfig};
use start_schemas::tool::ToolSet;
use start_schemas::trajectory::{GenerationParams, HintSettings, Mode, SegmentKind};
use start_schemas::validate::Checker;
use start_worker::pipeline::{trajectory_seed, JobParams, Pipeline, PipelineMetrics};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_figure_and_a_sql_table_land_on_the_row_and_read_back_with_pyarrow() {
    let sandbox = Arc::new(
        Sandbox::start(SandboxConfig {
            backend: BackendKind::Docker,
            pool_size: 1,
            ..SandboxConfig::default()
        })
        .await
        .expect("the Docker sandbox (run scripts/setup)"),
    );
    let script = Script::default();
    let mut config = EngineConfig::new(crate::common::model());
    // One thread, as every engine the tests start side by side (see the cluster's workers).
    config.threads = 1;
    let engine = Engine::start_scripted(
        config,
        script.clone(),
        Some(sandbox.clone()),
        tokio::runtime::Handle::current(),
    )
    .unwrap();
    let registry = start_telemetry::Registry::default();
    let pipeline = Arc::new(Pipeline {
        engine: Backend::Llama(engine),
        grader: Grader::new(Some(sandbox.clone())),
        model_name: "SmolLM2-135M-Instruct.Q4_1.gguf".into(),
        model_sha256: start_schemas::model::DEFAULT_MODEL_SHA256.into(),
        model_identity: None,
        sandbox: sandbox.identity().to_string(),
        worker_id: "data-test".into(),
        metrics: PipelineMetrics::new(&registry),
    });
    // The bundled set, read as `startctl validate` reads it: the files beside it, checked.
    let mut problems = Vec::new();
    Checker::default().check_file(
        &crate::common::workspace().join("examples/data-analysis/problems.jsonl"),
        &mut |d| panic!("{d}"),
        &mut |p| problems.push(p),
    );
    let problem = Arc::new(
        problems
            .into_iter()
            .find(|p| p.id.as_str() == "data-nov-revenue")
            .unwrap(),
    );
    let job = JobParams {
        job_id: "j-data".into(),
        seed_key: "j-data".into(),
        mode: Mode::Plain,
        params: GenerationParams {
            temperature: 0.6,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.0,
            repeat_penalty: 1.0,
            max_new_tokens: 320,
            max_tool_calls: 6,
            seed: 5,
        },
        hints: HintSettings::from_proto(None, 0.15),
        tools: ToolSet::all(),
    };
    script.open(
        trajectory_seed(5, "j-data", problem.id.as_str(), 0),
        "Let me look at the months.\n```python\nimport pandas as pd\nimport matplotlib.pyplot as plt\n\
         df = pd.read_csv('sales.csv')\ndf.groupby(df.date.str[:7]).revenue.sum().plot()\nplt.show()\n\
         print('plotted')\n```\nNow the total.\n```sql\nSELECT SUM(revenue) AS revenue FROM sales \
         WHERE date LIKE '2024-11%';\n```\n",
    );
    let row = pipeline.trajectory(problem, 0, &job).await.unwrap();
    row.check().unwrap();
    assert!(
        row.user_message.starts_with(
            "Attached data (read-only, in the working directory of every code block):\n\
             - sales.csv (CSV, 137987 bytes); in ```sql blocks: sales\n\n"
        ),
        "{}",
        row.user_message
    );
    assert_eq!(row.tools, ["python", "sql"]);
    let tools: Vec<&str> = row.tool_calls.iter().map(|c| c.tool.as_str()).collect();
    assert_eq!(&tools[..2], ["python", "sql"], "{:?}", row.tool_calls);
    let outputs: Vec<&str> = row
        .segments
        .iter()
        .filter(|s| s.kind == SegmentKind::Output)
        .map(|s| s.text.as_str())
        .collect();
    assert_eq!(
        outputs[0],
        "```output\nplotted\n[figure 1: 640x480 PNG]\n```\n"
    );
    assert_eq!(
        outputs[1],
        "```output\nrevenue\n-------\n243109\n(1 row)\n```\n"
    );
    // The scripted block drew one figure, on its code segment; what the model writes after
    // the script may draw more, on their own blocks.
    let drawn = |segment: u32| row.figures.iter().filter(|f| f.segment == segment).count();
    assert_eq!(drawn(row.tool_calls[0].segment), 1, "{:?}", row.tool_calls);
    assert_eq!(row.figures[0].segment, row.tool_calls[0].segment);

    // On disk, through the shard writer and the commit, read by pyarrow and DuckDB.
    let dir = tempfile::tempdir().unwrap();
    let dataset = start_dataset::DatasetLocation::local(dir.path()).unwrap();
    let mut writer =
        start_dataset::ShardWriter::create("j-data.u0.a0", &Default::default()).unwrap();
    writer.write(std::slice::from_ref(&row)).unwrap();
    writer.finish().unwrap().commit(&dataset).await.unwrap();
    let read: serde_json::Value = serde_json::from_str(&start_tests::python::reader(
        "read_figures.py",
        &[dir.path().to_str().unwrap()],
    ))
    .unwrap();
    assert_eq!(read["png_type"], "binary", "{read}");
    let got = &read["rows"][0];
    assert_eq!(got["tools"], serde_json::json!(["python", "sql"]));
    assert_eq!(got["tool_calls"][0], "python");
    let fig = &got["figures"][0];
    let want = &row.figures[0];
    assert_eq!(fig["segment"], want.segment);
    assert_eq!(fig["segment_kind"], "code");
    assert_eq!(
        (fig["width"].as_u64(), fig["height"].as_u64()),
        (Some(640), Some(480))
    );
    assert_eq!(fig["bytes"], want.png.len());
    assert_eq!(fig["size"], want.size);
    assert_eq!(fig["magic"], "89504e470d0a1a0a");
    use sha2::Digest;
    assert_eq!(fig["sha256"], hex::encode(sha2::Sha256::digest(&want.png)));
    let png_bytes: usize = row.figures.iter().map(|f| f.png.len()).sum();
    assert_eq!(read["duckdb_figures"], row.figures.len());
    assert_eq!(read["duckdb_png_bytes"], png_bytes);
    assert_eq!(read["hf_figures"], row.figures.len());
    assert_eq!(read["hf_png_sha256"][0], fig["sha256"]);
    // And start's own reader gives the row back as it was written, figure bytes and all.
    let back = start_dataset::Dataset::open(dataset).await.unwrap();
    let shard = back.manifest.shards[0].clone();
    let rows: Vec<_> = back
        .read_shard(&shard, 8)
        .await
        .unwrap()
        .flat_map(|b| b.unwrap())
        .collect();
    // created_at is stored to the microsecond.
    let mut want = row.clone();
    want.created_at =
        chrono::DateTime::from_timestamp_micros(row.created_at.timestamp_micros()).unwrap();
    assert_eq!(rows, [want]);
    sandbox.shutdown().await;
}
