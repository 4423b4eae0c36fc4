//! Import and decontamination speed, printed as a table.
//!
//! For each format, 50,000 synthetic rows in the source's layout are written to a JSONL file,
//! then (1) only read and parsed, the reference, and (2) imported: read, mapped, validated and
//! de-duplicated, as `startctl import` does. The ratio says what mapping costs over reading.
//! Then 50,000 problems are decontaminated against 5,000 evaluation items, a tenth of them
//! planted as contaminated, and the time is compared with indexing the items alone. The peak
//! resident memory after each step shows that imports stream (it does not grow with the rows).
//!
//! Run: `cargo bench -p start-sources`. START_BENCH_ROWS sets the rows (default 50000).

use serde_json::{json, Value};
use start_schemas::problem::Problem;
use start_schemas::rows::{read_rows, Location, ReadOptions};
use start_schemas::validate::check_row;
use start_sources::decontaminate::{Decontaminator, EvalIndex, Options};
use start_sources::import::ImportFormat;
use start_sources::importer::{ImportOptions, Importer};
use std::io::Write;
use std::time::Instant;

const WORDS: [&str; 16] = [
    "triangle",
    "integer",
    "sum",
    "prime",
    "circle",
    "find",
    "number",
    "digits",
    "greatest",
    "positive",
    "ratio",
    "area",
    "remainder",
    "divided",
    "sequence",
    "probability",
];

/// A question of `n` words drawn from `seed`, distinct per seed.
fn question(seed: u64, n: usize) -> String {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = format!("Problem {seed}:");
    for _ in 0..n {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        out.push(' ');
        out.push_str(WORDS[(s % 16) as usize]);
    }
    out
}

fn row(format: ImportFormat, i: u64) -> Value {
    let q = question(i, 60);
    match format {
        ImportFormat::Aime => {
            json!({"ID": format!("{}-{}", 1983 + i % 40, i), "Year": 1983 + i % 40, "Problem Number": i % 15 + 1, "Question": q, "Answer": (i % 1000).to_string(), "Part": "I"})
        }
        ImportFormat::Math => {
            json!({"problem": q, "solution": format!("So the answer is $\\boxed{{\\frac{{{i}}}{{7}}}}$."), "level": "Level 5", "type": "Algebra", "unique_id": format!("test/algebra/{i}.json")})
        }
        ImportFormat::Numina => {
            json!({"problem": q, "solution": format!("Thus \\boxed{{{i}}}."), "answer": i.to_string(), "problem_type": "Algebra", "question_type": "math-word-problem", "source": "olympiads", "uuid": format!("u{i}"), "is_reasoning_complete": [true, true], "generations": ["a long generation ".repeat(20), "another ".repeat(30)], "correctness_math_verify": [true, false], "correctness_llama": null, "finish_reasons": null, "correctness_count": 1, "messages": [{"role": "user", "content": q}], "synthetic": false})
        }
        ImportFormat::GpqaCsv => {
            json!({"Record ID": format!("rec{i}"), "Question": q, "Correct Answer": "right", "Incorrect Answer 1": "w1", "Incorrect Answer 2": "w2", "Incorrect Answer 3": "w3"})
        }
        ImportFormat::Humaneval => {
            json!({"task_id": format!("HumanEval/{i}"), "prompt": format!("def f{i}(x):\n    \"\"\" {q}\n    >>> f{i}(1)\n    2\n    \"\"\"\n"), "canonical_solution": "    return x + 1\n", "test": "def check(c):\n    assert c(1) == 2\n", "entry_point": format!("f{i}")})
        }
        ImportFormat::Livecodebench => {
            json!({"question_id": format!("q{i}"), "question_title": "T", "question_content": q, "platform": "atcoder", "contest_date": "2023-05-13T00:00:00", "starter_code": "", "difficulty": "easy", "public_test_cases": "[{\"input\": \"1\\n\", \"output\": \"1\\n\", \"testtype\": \"stdin\"}]", "private_test_cases": "[{\"input\": \"2\\n\", \"output\": \"2\\n\", \"testtype\": \"stdin\"}]", "metadata": "{}"})
        }
        ImportFormat::Codecontests => {
            json!({"name": format!("{i}_A. Task"), "description": q, "public_tests": {"input": ["1 2\n"], "output": ["3\n"]}, "private_tests": {"input": ["5 5\n"], "output": ["10\n"]}, "generated_tests": {"input": ["0 0\n", "7 1\n"], "output": ["0\n", "8\n"]}, "source": 2, "difficulty": 7, "solutions": {"language": [3, 2], "solution": ["print(sum(map(int, input().split())))", "int main(){}"]}, "incorrect_solutions": {"language": [], "solution": []}, "cf_contest_id": i, "cf_index": "A", "cf_points": 500.0, "cf_rating": 800, "cf_tags": ["math"], "is_description_translated": false, "untranslated_description": "", "time_limit": {"seconds": 2, "nanos": 0}, "memory_limit_bytes": 268435456, "input_file": "", "output_file": ""})
        }
        ImportFormat::Codeforces => {
            json!({"id": format!("{i}A"), "contest_id": i.to_string(), "contest_name": "Round", "contest_type": "CF", "contest_start": 1_600_000_000 + i, "contest_start_year": 2020, "index": "A", "time_limit": 1.0, "memory_limit": 256.0, "title": "T", "description": q, "input_format": "Two integers.", "output_format": "Their sum.", "interaction_format": null, "note": null, "examples": [{"input": "1 2\n", "output": "3\n"}], "editorial": "An editorial. ".repeat(20), "rating": 800, "tags": ["math"], "testset_size": 2, "official_tests": [{"input": "5 5\n", "output": "10\n"}], "official_tests_complete": true, "input_mode": "stdio", "generated_checker": null, "executable": true, "generated_tests": 0, "prompt": "p"})
        }
        ImportFormat::Apps => {
            json!({"problem_id": i, "question": q, "solutions": "[\"print(1)\"]", "starter_code": "", "input_output": "{\"inputs\": [\"1\\n\", \"2\\n\"], \"outputs\": [\"1\\n\", \"2\\n\"]}", "difficulty": "interview", "url": "u"})
        }
    }
}

/// Peak resident memory so far, in MiB (Linux).
fn peak_mib() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kb| format!("{:.0}", kb / 1024.0))
        .unwrap_or_else(|| "?".into())
}

fn problem(i: u64, text: &str) -> Problem {
    check_row(
        &json!({"id": format!("p{i}"), "source": "bench", "kind": "math", "question": text, "answer": "1"}),
        &Location::file("bench"),
    )
    .expect("valid")
}

fn main() {
    let rows: u64 = std::env::var("START_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        // `cargo bench` passes --bench; `cargo test --benches` (CI) passes nothing: a smoke run.
        .unwrap_or(if std::env::args().any(|a| a == "--bench") {
            50_000
        } else {
            500
        });
    let dir = tempfile::tempdir().expect("temp dir");
    println!("import: {rows} synthetic rows per format, JSONL; reference = read and parse only");
    println!(
        "{:<14} {:>10} {:>12} {:>12} {:>8} {:>9}",
        "format", "MB", "read rows/s", "import rows/s", "ratio", "peak MiB"
    );
    for (name, format) in ImportFormat::ALL {
        let path = dir.path().join(format!("{name}.jsonl"));
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
        for i in 0..rows {
            serde_json::to_writer(&mut f, &row(format, i)).expect("write");
            f.write_all(b"\n").expect("write");
        }
        f.flush().expect("flush");
        drop(f);
        let mb = std::fs::metadata(&path).expect("stat").len() as f64 / 1e6;
        let options = ReadOptions {
            import_layouts: true,
            ..ReadOptions::default()
        };
        let t = Instant::now();
        let read = read_rows(&path, &options)
            .expect("opens")
            .filter(|r| r.value.is_ok())
            .count() as u64;
        let read_s = t.elapsed().as_secs_f64();
        assert_eq!(read, rows);
        let mut importer = Importer::new(ImportOptions {
            format,
            before: None,
        });
        let mut imported = 0u64;
        let t = Instant::now();
        importer.file(&path, &mut |d| panic!("{d}"), &mut |_| imported += 1);
        let import_s = t.elapsed().as_secs_f64();
        assert_eq!(imported, rows, "{name}: {:?}", importer.summary);
        println!(
            "{:<14} {:>10.1} {:>12.0} {:>12.0} {:>7.2}x {:>9}",
            name,
            mb,
            rows as f64 / read_s,
            rows as f64 / import_s,
            import_s / read_s,
            peak_mib()
        );
        std::fs::remove_file(&path).ok();
    }

    let evals = rows / 10;
    let texts: Vec<String> = (0..rows).map(|i| question(1_000_000 + i, 80)).collect();
    let eval_texts: Vec<String> = (0..evals).map(|i| question(i, 80)).collect();
    let problems: Vec<Problem> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            // Every tenth problem quotes a 20-word span of an evaluation item.
            if i % 10 == 0 {
                let e = &eval_texts[i % evals as usize];
                let span: Vec<&str> = e.split(' ').skip(30).take(20).collect();
                problem(i as u64, &format!("{t} {}", span.join(" ")))
            } else {
                problem(i as u64, t)
            }
        })
        .collect();
    let eval_problems: Vec<Problem> = eval_texts
        .iter()
        .enumerate()
        .map(|(i, t)| problem(i as u64, t))
        .collect();
    let t = Instant::now();
    let mut index = EvalIndex::new(Options::default());
    for e in &eval_problems {
        index.add(e);
    }
    let index_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut d = Decontaminator::new(index);
    let mut contaminated = 0;
    let mut duplicates = 0;
    for p in &problems {
        match d.check(p).map(|r| r.reason) {
            Some("contaminated") => contaminated += 1,
            Some(_) => duplicates += 1,
            None => {}
        }
    }
    let check_s = t.elapsed().as_secs_f64();
    println!();
    println!(
        "decontaminate: {rows} problems x {evals} evaluation items, 13-grams, 80-word questions"
    );
    println!(
        "{:<22} {:>10} {:>14} {:>14} {:>9}",
        "step", "seconds", "items/s", "vs indexing", "peak MiB"
    );
    println!(
        "{:<22} {:>10.3} {:>14.0} {:>13.2}x {:>9}",
        "index evaluation set",
        index_s,
        evals as f64 / index_s,
        1.0,
        peak_mib()
    );
    println!(
        "{:<22} {:>10.3} {:>14.0} {:>13.2}x {:>9}",
        "check problems",
        check_s,
        rows as f64 / check_s,
        check_s / index_s,
        peak_mib()
    );
    println!(
        "found {contaminated} contaminated (planted {}), {duplicates} near-duplicates",
        rows.div_ceil(10)
    );
}
