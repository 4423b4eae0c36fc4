//! The targets: each parser of untrusted input, its seeds (real files of this repository: the
//! datasets' release files the importers are tested on, the bundled problems and their
//! attached files, a shard and a manifest start wrote) and its format's tokens.
//!
//! A target's run must not panic, must end within a second and must not allocate without
//! bound, whatever the bytes; what it returns (an error, a count) is not judged: a clear
//! refusal is a correct answer to a malformed input.

use base64::Engine as _;
use bytes::Bytes;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// A parser's entry, fed one input's bytes.
type Run = Box<dyn FnMut(&[u8])>;

/// One parser under fuzzing.
pub struct Target {
    /// Its name, as the report and `regressions/<name>/` say it.
    pub name: &'static str,
    /// What it reads, for the report.
    pub what: &'static str,
    /// The real inputs mutations start from.
    pub seeds: Vec<Vec<u8>>,
    /// Tokens of its format.
    pub dict: Vec<Vec<u8>>,
    run: Run,
    /// A scratch directory some targets write their input to (a file parser reads paths).
    _scratch: Option<tempfile::TempDir>,
}

impl Target {
    /// Runs the parser on `input`.
    pub fn run(&mut self, input: &[u8]) {
        (self.run)(input)
    }
}

/// The repository's root.
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &str) -> Vec<u8> {
    std::fs::read(repo().join(path)).unwrap_or_else(|e| panic!("seed {path}: {e}"))
}

fn lines(path: &str) -> Vec<Vec<u8>> {
    read(path)
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

fn tokens(list: &[&str]) -> Vec<Vec<u8>> {
    list.iter().map(|t| t.as_bytes().to_vec()).collect()
}

fn raw(list: &[&[u8]]) -> Vec<Vec<u8>> {
    list.iter().map(|t| t.to_vec()).collect()
}

const JSON_TOKENS: [&str; 16] = [
    "{",
    "}",
    "[",
    "]",
    "\"",
    ":",
    ",",
    "null",
    "true",
    "-0",
    "1e999",
    "\\u0000",
    "\\ud800",
    "\"id\": ",
    "\"kind\": \"code\"",
    "\"files\": [",
];

/// The bundled problem files, whole: the JSONL targets' seeds.
fn problem_files() -> Vec<Vec<u8>> {
    [
        "examples/problems/math.jsonl",
        "examples/problems/choice.jsonl",
        "examples/problems/code.jsonl",
        "examples/data-analysis/problems.jsonl",
    ]
    .iter()
    .map(|p| read(p))
    .collect()
}

/// A scratch directory holding the data-analysis problems' attached files, so that a problem
/// file's rows that name them load and check them as they would in a run.
fn scratch_with_attachments() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a scratch directory");
    for f in ["sales.csv", "returns.parquet", "stores.sqlite"] {
        std::fs::write(
            dir.path().join(f),
            read(&format!("examples/data-analysis/{f}")),
        )
        .expect("a scratch file");
    }
    dir
}

/// A target that writes its input to `file_name` in a scratch directory and checks that file
/// as `startctl validate` does, attached files included.
fn problem_file(
    name: &'static str,
    what: &'static str,
    file_name: &str,
    seeds: Vec<Vec<u8>>,
    dict: Vec<Vec<u8>>,
) -> Target {
    let scratch = scratch_with_attachments();
    let path = scratch.path().join(file_name);
    Target {
        name,
        what,
        seeds,
        dict,
        run: Box::new(move |input| {
            std::fs::write(&path, input).expect("the scratch file");
            let mut checker = start_schemas::validate::Checker::default();
            checker.check_file(&path, &mut |_| {}, &mut |_| {});
        }),
        _scratch: Some(scratch),
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).expect("gzip in memory");
    gz.finish().expect("gzip in memory")
}

/// The bundled math problems as start's CSV problem rows.
fn csv_seed() -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["id", "source", "kind", "question", "answer"])
        .expect("csv in memory");
    for line in lines("examples/problems/math.jsonl") {
        let v: serde_json::Value = serde_json::from_slice(&line).expect("a bundled row");
        let field = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        w.write_record([
            field("id"),
            field("source"),
            field("kind"),
            field("question"),
            field("answer"),
        ])
        .expect("csv in memory");
    }
    w.into_inner().expect("csv in memory")
}

/// The bundled math problems as a Parquet problem file (string columns).
fn parquet_seed() -> Vec<u8> {
    use arrow_array::{ArrayRef, RecordBatch, StringArray};
    use std::sync::Arc;
    let rows: Vec<serde_json::Value> = lines("examples/problems/math.jsonl")
        .iter()
        .map(|l| serde_json::from_slice(l).expect("a bundled row"))
        .collect();
    let columns = ["id", "source", "kind", "question", "answer"];
    let arrays: Vec<(&str, ArrayRef)> = columns
        .iter()
        .map(|c| {
            let values: Vec<&str> = rows
                .iter()
                .map(|r| r[*c].as_str().unwrap_or_default())
                .collect();
            (*c, Arc::new(StringArray::from(values)) as ArrayRef)
        })
        .collect();
    let batch = RecordBatch::try_from_iter(arrays).expect("a batch");
    let mut out = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut out, batch.schema(), None)
        .expect("a Parquet writer");
    w.write(&batch).expect("a Parquet write");
    w.close().expect("a Parquet file");
    out
}

/// The pickles inside the LiveCodeBench release rows (`private_test_cases`: base64 of zlib of
/// a pickle), decoded as the importer does.
fn pickle_seeds() -> Vec<Vec<u8>> {
    lines("sources/tests/fixtures/livecodebench.jsonl")
        .iter()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_slice(l).ok()?;
            let blob = v["private_test_cases"].as_str()?;
            let raw = base64::engine::general_purpose::STANDARD
                .decode(blob)
                .ok()?;
            let mut pickled = Vec::new();
            flate2::read::ZlibDecoder::new(raw.as_slice())
                .read_to_end(&mut pickled)
                .ok()?;
            Some(pickled)
        })
        .collect()
}

/// Streams as llama.cpp's and vLLM's `/v1/completions` send them (the shapes the backend's
/// tests and the peer bench see from the real servers).
fn sse_seeds() -> Vec<Vec<u8>> {
    let llama = concat!(
        "data: {\"choices\":[{\"text\":\"The\",\"index\":0,\"finish_reason\":null,\"logprobs\":{\"content\":[{\"id\":504,\"token\":\"The\",\"bytes\":[84,104,101],\"logprob\":-0.1}]}}],\"object\":\"text_completion\"}\n\n",
        "data: {\"choices\":[{\"text\":\" é\",\"index\":0,\"finish_reason\":null,\"logprobs\":{\"content\":[{\"id\":2791,\"token\":\" é\",\"bytes\":[32,195,169],\"logprob\":-0.5}]}}]}\n\n",
        "data: {\"choices\":[{\"text\":\"\",\"index\":0,\"finish_reason\":\"stop\"}]}\n\n",
        "data: [DONE]\n\n",
    );
    let vllm = concat!(
        "data: {\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"text\":\"ab\",\"logprobs\":null,\"finish_reason\":null,\"stop_reason\":null,\"token_ids\":[7,8]}],\"usage\":null}\n\n",
        "data: {\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"text\":\"c\",\"logprobs\":null,\"finish_reason\":\"length\",\"stop_reason\":null,\"token_ids\":[9]}],\"usage\":null}\n\n",
        "data: [DONE]\n\n",
    );
    let error = concat!(
        "data: {\"choices\":[{\"text\":\"x\",\"finish_reason\":null}]}\n\n",
        "data: {\"error\":{\"code\":500,\"message\":\"the KV cache is full\",\"type\":\"server_error\"}}\n\n",
    );
    vec![llama.into(), vllm.into(), error.into()]
}

/// A manifest as start writes it today (a dataset committed in a scratch directory) and one
/// of layout 1 (the migration fixture).
fn manifest_seeds() -> Vec<Vec<u8>> {
    use start_dataset::{DatasetLocation, ShardOptions, ShardWriter};
    let dir = tempfile::tempdir().expect("a scratch directory");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let loc = DatasetLocation::local(dir.path()).expect("a local dataset");
    for unit in ["unit-0", "unit-1"] {
        let mut w = ShardWriter::create(unit, &ShardOptions::default()).expect("a shard writer");
        w.write(&[shard_row()]).expect("a row");
        let encoded = w.finish().expect("a shard");
        runtime
            .block_on(encoded.commit(&loc))
            .expect("a committed shard");
    }
    vec![
        std::fs::read(dir.path().join(start_dataset::layout::MANIFEST)).expect("the manifest"),
        read("tests/fixtures/v1-dataset/manifest.json"),
    ]
}

/// A trajectory row for the manifest seed: the first row of the real shard fixture.
fn shard_row() -> start_schemas::trajectory::Trajectory {
    let bytes = Bytes::from(read("grader/tests/fixtures/rule_rows.parquet"));
    let mut batches =
        start_dataset::reader::batches("rule_rows".into(), bytes, 1).expect("the shard fixture");
    batches
        .next()
        .and_then(Result::ok)
        .and_then(|b| b.into_iter().next())
        .expect("a row in the shard fixture")
}

/// Every target, seeds read from the repository.
pub fn all() -> Vec<Target> {
    let jsonl_seeds = problem_files();
    let mut targets = vec![
        problem_file(
            "problem-jsonl",
            "problem files, JSONL (startctl validate, the coordinator's intake)",
            "problems.jsonl",
            jsonl_seeds.clone(),
            tokens(&JSON_TOKENS),
        ),
        problem_file(
            "problem-gzip",
            "problem files, gzip-compressed JSONL",
            "problems.jsonl.gz",
            jsonl_seeds.iter().map(|s| gzip(s)).collect(),
            raw(&[b"\x1f\x8b", b"\0\0\0\0", b"\xff\xff"]),
        ),
        problem_file(
            "problem-parquet",
            "problem files, Parquet",
            "problems.parquet",
            vec![parquet_seed()],
            raw(&[b"PAR1", b"\0\0\0\0", b"\x15", b"\x19", b"\xff\xff\xff\x7f"]),
        ),
        problem_file(
            "problem-csv",
            "problem files, CSV",
            "problems.csv",
            vec![csv_seed()],
            raw(&[
                b"\"",
                b"\"\"",
                b",",
                b"\r\n",
                b"\n",
                b"id,",
                b"\xef\xbb\xbf",
            ]),
        ),
    ];
    targets.push(Target {
        name: "code-tests",
        what: "a code problem's test spec (stdio cases, functions, limits)",
        seeds: lines("examples/problems/code.jsonl")
            .iter()
            .filter_map(|l| {
                let v: serde_json::Value = serde_json::from_slice(l).ok()?;
                serde_json::to_vec(&v["tests"]).ok()
            })
            .collect(),
        dict: tokens(&[
            "\"cases\": ",
            "\"type\": \"functional\"",
            "\"fn_name\": ",
            "\"time_limit_s\": ",
            "\"memory_limit_mb\": ",
            "1e308",
            "-1",
        ]),
        run: Box::new(|input| {
            let Ok(tests) = serde_json::from_slice::<serde_json::Value>(input) else {
                return;
            };
            let row = serde_json::json!({"id": "fuzz", "source": "fuzz", "kind": "code",
                                         "question": "q", "tests": tests});
            let _ = start_schemas::validate::check_row(
                &row,
                &start_schemas::rows::Location::file("fuzz"),
            );
        }),
        _scratch: None,
    });
    targets.push(Target {
        name: "attachment",
        what: "an attached file's checks (CSV, Parquet, SQLite; size, sha256, format)",
        seeds: [
            (b'c', "sales.csv"),
            (b'p', "returns.parquet"),
            (b's', "stores.sqlite"),
        ]
        .iter()
        .map(|(tag, f)| {
            let mut seed = vec![*tag];
            seed.extend(read(&format!("examples/data-analysis/{f}")));
            seed
        })
        .collect(),
        dict: raw(&[b"PAR1", b"SQLite format 3\0", b"\xff\xfe", b"\n", b","]),
        run: Box::new(|input| {
            let Some((tag, bytes)) = input.split_first() else {
                return;
            };
            let name = match tag % 3 {
                0 => "x.csv",
                1 => "x.parquet",
                _ => "x.sqlite",
            };
            let mut file = start_schemas::attachment::Attachment {
                name: name.into(),
                path: None,
                sha256: hex_sha256(bytes),
                size: None,
                content: None,
            };
            let _ = file.load(Bytes::copy_from_slice(bytes));
        }),
        _scratch: None,
    });
    targets.push(Target {
        name: "pickle",
        what: "LiveCodeBench's private tests (start's plain-data pickle reader)",
        seeds: pickle_seeds(),
        // Opcodes: PROTO, FRAME, BINUNICODE, SHORT_BINUNICODE, EMPTY_LIST, APPENDS, MARK,
        // BINPUT, BINGET, LONG_BINGET, EMPTY_DICT, SETITEMS, TUPLE3, LONG1, GLOBAL, REDUCE, STOP.
        dict: vec![
            vec![0x80, 4],
            vec![0x95, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
            vec![b'X', 0xff, 0xff, 0xff, 0x7f],
            vec![0x8c, 0xff],
            vec![b']'],
            vec![b'e'],
            vec![b'('],
            vec![b'q', 0],
            vec![b'h', 0],
            vec![b'j', 0xff, 0xff, 0xff, 0xff],
            vec![b'}'],
            vec![b'u'],
            vec![0x87],
            vec![0x8a, 0xff],
            b"cos\nsystem\n".to_vec(),
            vec![b'R'],
            vec![b'.'],
        ],
        run: Box::new(|input| {
            let _ = start_sources::pickle::loads(input);
        }),
        _scratch: None,
    });
    targets.push(Target {
        name: "math-answer",
        what: "the LaTeX and answer parser (gold, a newline, then the response)",
        seeds: lines("grader/tests/fixtures/math_cases.jsonl")
            .iter()
            .filter_map(|l| {
                let v: serde_json::Value = serde_json::from_slice(l).ok()?;
                Some(format!("{}\n{}", v["gold"].as_str()?, v["response"].as_str()?).into_bytes())
            })
            .collect(),
        dict: tokens(&[
            "\\frac{",
            "\\dfrac",
            "}{",
            "^{",
            "_{",
            "\\sqrt[",
            "\\sqrt{",
            "\\boxed{",
            "\\left(",
            "\\right)",
            "\\pi",
            "\\infty",
            "\\cup",
            "\\text{",
            "\\begin{pmatrix}",
            "&",
            "\\\\",
            "^",
            "!",
            "%",
            "\\%",
            "\\$",
            "e^{",
            "\\log_",
            "\\sin",
            "(",
            ")",
            "[",
            "]",
            "=",
            "\\le",
            "i",
            "x",
            ".",
            "-",
            "1/",
            "0.",
            "\\cdot",
            "\\times",
        ]),
        run: Box::new(|input| {
            let text = String::from_utf8_lossy(input);
            let (gold, response) = text.split_once('\n').unwrap_or((&text, &text));
            let _ = start_grader::math::verify(gold, response);
            let _ = start_grader::math::extract_answer(response);
        }),
        _scratch: None,
    });
    targets.push(Target {
        name: "verdict-text",
        what: "the choice letter and the judge verdict read from a response",
        seeds: tokens(&[
            "The answer is (B).",
            "**Answer:** \\boxed{C}",
            "Answer: D\n",
            "A and B are wrong, so C",
            "Novelty: novel\nSignificance: significant\n",
            "Novelty: novel | verification\nSignificance: moderate",
        ]),
        dict: tokens(&[
            "\\boxed{",
            "(",
            ")",
            "Answer:",
            "**",
            "Novelty:",
            "Significance:",
            "\n",
            "novel",
            "trivial",
        ]),
        run: Box::new(|input| {
            let text = String::from_utf8_lossy(input);
            let _ = start_grader::choice::extract_letter(&text, 4);
            let _ = start_grader::choice::extract_letter(&text, 26);
            let _ = start_grader::judge::parse(&text);
        }),
        _scratch: None,
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    targets.push(Target {
        name: "sse",
        what: "the OpenAI-compatible backend's server-sent-events client",
        seeds: sse_seeds(),
        dict: tokens(&[
            "data: ",
            "data: [DONE]\n\n",
            "error: ",
            "\n\n",
            "\"token_ids\":[",
            "\"bytes\":[",
            "\"finish_reason\":\"stop\"",
            "\"id\":-1",
            "\"error\":{",
        ]),
        run: Box::new(move |input| {
            // Whole, then in pieces of 7 bytes: a line split across network chunks.
            let whole = vec![Bytes::copy_from_slice(input)];
            let pieces = input.chunks(7).map(Bytes::copy_from_slice).collect();
            for chunks in [whole, pieces] {
                let _ = runtime.block_on(start_engine::openai::decode_events(chunks));
            }
        }),
        _scratch: None,
    });
    targets.push(Target {
        name: "shard",
        what: "the shard reader (a dataset's Parquet trajectories)",
        seeds: vec![
            read("grader/tests/fixtures/rule_rows.parquet"),
            read("tests/fixtures/v1-dataset/shards/j20261201-231750-46c3ff.u00005.a0.parquet"),
        ],
        dict: raw(&[
            b"PAR1",
            b"start.schema_version",
            b"\0\0\0\0",
            b"\xff\xff\xff\x7f",
        ]),
        run: Box::new(|input| {
            if let Ok(batches) =
                start_dataset::reader::batches("fuzz".into(), Bytes::copy_from_slice(input), 64)
            {
                for batch in batches {
                    if batch.is_err() {
                        break;
                    }
                }
            }
        }),
        _scratch: None,
    });
    targets.push(Target {
        name: "manifest",
        what: "a dataset's manifest",
        seeds: manifest_seeds(),
        dict: tokens(&JSON_TOKENS),
        run: Box::new(|input| {
            if let Ok(m) = start_dataset::Manifest::parse(input, "fuzz") {
                let _ = (m.rows(), m.content_sha256());
            }
        }),
        _scratch: None,
    });
    targets
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}
