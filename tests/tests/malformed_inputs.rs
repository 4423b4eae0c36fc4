//! A battery of malformed problem files: each must be reported at its exact place, with the
//! field and the reason, and nothing may panic or stop the rest of the file from being checked.

use start_schemas::problem::ProblemKind;
use start_schemas::validate::Checker;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Checks `files` and returns every diagnostic as printed, plus the checker for counts.
fn check(files: &[&Path]) -> (Vec<String>, Checker) {
    let mut checker = Checker::default();
    let mut out = Vec::new();
    for file in files {
        checker.check_file(file, &mut |d| out.push(d.to_string()), &mut |_| {});
    }
    (out, checker)
}

struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Self {
        Self(tempfile::tempdir().expect("tempdir"))
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.path().join(name);
        std::fs::write(&path, bytes).expect("write fixture");
        path
    }
}

/// Diagnostics name the file as given, so the tests compare against the path's display form.
fn at(path: &Path, rest: &str) -> String {
    format!("{}{rest}", path.display())
}

const GOOD_MATH: &str =
    r#"{"id":"m1","source":"math","kind":"math","question":"1+1?","answer":"2"}"#;

#[test]
fn empty_file() {
    let d = Dir::new();
    let f = d.write("empty.jsonl", b"");
    let (diags, _) = check(&[&f]);
    assert_eq!(
        diags,
        [at(
            &f,
            ": (file): the file is empty; expected at least one row"
        )]
    );
}

#[test]
fn missing_file_and_directory() {
    let d = Dir::new();
    let missing = d.0.path().join("nope.jsonl");
    let (diags, _) = check(&[&missing, d.0.path()]);
    assert_eq!(diags.len(), 2);
    assert!(
        diags[0].starts_with(&at(&missing, ": (file): cannot open:")),
        "{diags:?}"
    );
    assert_eq!(
        diags[1],
        at(d.0.path(), ": (file): is a directory, expected a file")
    );
}

#[test]
fn random_bytes_are_reported_line_by_line_without_panicking() {
    let d = Dir::new();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let bytes: Vec<u8> = (0..200_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    let f = d.write("random.jsonl", &bytes);
    let (diags, checker) = check(&[&f]);
    assert_eq!(checker.valid, 0);
    assert!(!diags.is_empty());
    assert!(
        diags[0].starts_with(&at(&f, ":1: (row): invalid ")),
        "{}",
        diags[0]
    );
    let non_blank = bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.iter().all(|b| b" \t\r\x0b\x0c".contains(b)))
        .count();
    assert_eq!(diags.len(), non_blank, "one diagnostic per non-blank line");
}

#[test]
fn random_bytes_named_parquet() {
    let d = Dir::new();
    let f = d.write("data.parquet", b"definitely not parquet, just text\n");
    let (diags, _) = check(&[&f]);
    assert_eq!(diags.len(), 1);
    assert!(
        diags[0].starts_with(&at(&f, ": (file): not a readable Parquet file:")),
        "{}",
        diags[0]
    );
}

#[test]
fn truncated_gzip_is_reported_at_the_line_where_it_breaks() {
    let d = Dir::new();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    for i in 0..2000 {
        writeln!(
            enc,
            r#"{{"id":"p{i}","source":"math","kind":"math","question":"What is {i} + {i}? Some padding to make the stream long enough.","answer":"{}"}}"#,
            2 * i
        )
        .unwrap();
    }
    let full = enc.finish().unwrap();
    let f = d.write("cut.jsonl.gz", &full[..full.len() / 2]);
    let (diags, checker) = check(&[&f]);
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert!(checker.valid > 0 && checker.valid < 2000);
    assert_eq!(
        diags[0],
        at(
            &f,
            &format!(
                ":{}: (row): the compressed stream is truncated; the rest of the file is unreadable",
                checker.valid + 1
            )
        )
    );
}

#[test]
fn a_huge_line_is_measured_not_buffered() {
    let d = Dir::new();
    let path = d.0.path().join("huge.jsonl");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    writeln!(file, "{GOOD_MATH}").unwrap();
    let chunk = vec![b'x'; 1 << 20];
    for _ in 0..64 {
        file.write_all(&chunk).unwrap();
    }
    writeln!(file).unwrap();
    writeln!(
        file,
        "{}",
        GOOD_MATH.replace("m1", "m2").replace("1+1", "2+2")
    )
    .unwrap();
    drop(file);
    let mut checker = Checker::default();
    checker.options.max_line_bytes = 1 << 20;
    let mut diags = Vec::new();
    checker.check_file(&path, &mut |d| diags.push(d.to_string()), &mut |_| {});
    assert_eq!(
        diags,
        [at(
            &path,
            ":2: (row): line is 67108864 bytes, longer than the limit of 1048576 bytes"
        )]
    );
    assert_eq!(
        checker.valid, 2,
        "the rows around the long line are still checked"
    );
}

#[test]
fn invalid_utf8_invalid_json_and_non_objects() {
    let d = Dir::new();
    let f = d.write(
        "bad.jsonl",
        b"{\"id\": \"a\xc3\x28\"}\n{\"id\": }\n[1, 2]\n\"text\"\n",
    );
    let (diags, _) = check(&[&f]);
    assert_eq!(diags.len(), 4, "{diags:?}");
    assert_eq!(
        diags[0],
        at(&f, ":1: (row): invalid UTF-8 at byte 10 of the line")
    );
    assert!(
        diags[1].starts_with(&at(&f, ":2: (row): invalid JSON at column 8:")),
        "{}",
        diags[1]
    );
    assert_eq!(
        diags[2],
        at(&f, ":3: (row): expected a JSON object, got an array")
    );
    assert_eq!(
        diags[3],
        at(&f, ":4: (row): expected a JSON object, got a string")
    );
}

#[test]
fn wrong_types_and_missing_fields_are_all_reported_per_row() {
    let d = Dir::new();
    let f = d.write(
        "types.jsonl",
        br#"{"source":"math","question":42,"answer":["2"],"anwser":"2"}
{"id":"ok","source":"math","kind":"math","question":"q","answer":"1","metadata":"x"}
{"id":"x y","source":"Math Set","kind":"essay","question":"  "}
"#,
    );
    let (diags, _) = check(&[&f]);
    assert_eq!(
        diags,
        [
            at(&f, ":1: anwser: unknown field; expected one of: id, source, kind, question, answer, also_accepted, choices, tests, solution, files, metadata"),
            at(&f, ":1: kind: missing; this field is required"),
            at(&f, ":1: question: expected a string, got a number"),
            at(&f, ":2: metadata: expected an object, got a string"),
            at(&f, ":3: id: must not contain whitespace or control characters"),
            at(&f, ":3: source: \"Math Set\" is not a source name: use lower-case letters, digits, '_', '-' or '.', at most 64 bytes (e.g. aime, math, gpqa, livecodebench)"),
            at(&f, ":3: kind: unknown kind \"essay\"; expected math, choice, code or judge"),
            at(&f, ":3: question: must not be empty"),
        ]
    );
}

#[test]
fn kind_specific_rules() {
    let d = Dir::new();
    let f = d.write(
        "kinds.jsonl",
        br#"{"id":"a1","source":"aime","kind":"math","question":"q1","answer":"1000"}
{"id":"c1","source":"gpqa","kind":"choice","question":"q2","choices":["only"],"answer":"A"}
{"id":"c2","source":"gpqa","kind":"choice","question":"q3","choices":["a","b","c","d"],"answer":"E"}
{"id":"c3","source":"gpqa","kind":"choice","question":"q4","choices":["a","b"," a "],"answer":1.5}
{"id":"k1","source":"lcb","kind":"code","question":"q5","tests":{"cases":[]}}
{"id":"k2","source":"lcb","kind":"code","question":"q6","tests":{"type":"stdio","cases":[{"input":"1"},{"input":"2","output":3}],"time_limit_s":-1}}
{"id":"k3","source":"he","kind":"code","question":"q7","answer":"x","tests":{"type":"check","test":"def check(c): pass","memory_limit_mb":1}}
{"id":"m1","source":"math","kind":"math","question":"q8","answer":"2","choices":["a","b"]}
{"id":"k4","source":"lcb","kind":"code","question":"q9","tests":{"type":"stdio","cases":[{"input":"1","output":"1","public":"yes"}]}}
{"id":"k5","source":"he","kind":"code","question":"q10","tests":{"type":"check","test":"t","entry_point":"f","examples":[{"call":"f(1)"},{"call":"f(2)","expected":2,"why":1}]}}
{"id":"k6","source":"he","kind":"code","question":"q11","tests":{"type":"check","test":"t","entry_point":"f","examples":"f(1) == 2"}}
"#,
    );
    let (diags, checker) = check(&[&f]);
    assert_eq!(checker.valid, 0);
    assert_eq!(
        diags,
        [
            at(
                &f,
                ":1: answer: AIME answers are integers from 0 to 999, got \"1000\""
            ),
            at(&f, ":2: choices: has 1 options; expected 2 to 10"),
            at(
                &f,
                ":3: answer: points at option E (4), but there are only 4 choices"
            ),
            at(&f, ":4: choices[2]: repeats choices[0]"),
            at(
                &f,
                ":4: answer: 1.5 is not an option index; expected a whole number from 0"
            ),
            at(
                &f,
                ":5: tests.type: expected \"stdio\" or \"check\", got nothing"
            ),
            at(
                &f,
                ":6: tests.time_limit_s: expected seconds in (0, 600], got -1"
            ),
            at(&f, ":6: tests.cases[0].output: missing"),
            at(
                &f,
                ":6: tests.cases[1].output: expected a string, got a number"
            ),
            at(&f, ":7: answer: not allowed for kind code"),
            at(
                &f,
                ":7: tests.memory_limit_mb: expected whole MiB from 16 to 65536, got 1"
            ),
            at(
                &f,
                ":7: tests.entry_point: missing; the function check() is given"
            ),
            at(&f, ":8: choices: not allowed for kind math"),
            at(
                &f,
                ":9: tests.cases[0].public: expected true or false (is the case shown to the model?), got a string"
            ),
            at(&f, ":10: tests.examples[0].expected: missing"),
            at(
                &f,
                ":10: tests.examples[1].why: unknown field; expected one of: call, expected"
            ),
            at(
                &f,
                ":10: tests.examples[1].expected: expected a string, got a number"
            ),
            at(
                &f,
                ":11: tests.examples: expected a list of {call, expected} objects, got a string"
            ),
        ]
    );
}

#[test]
fn also_accepted_answers_are_checked_like_the_answer() {
    let d = Dir::new();
    let f = d.write(
        "also.jsonl",
        br#"{"id":"a1","source":"aime","kind":"math","question":"q1","answer":"80","also_accepted":["81"]}
{"id":"a2","source":"aime","kind":"math","question":"q2","answer":"80","also_accepted":["81.5"]}
{"id":"m1","source":"math","kind":"math","question":"q3","answer":"1/2","also_accepted":"0.5"}
{"id":"m2","source":"math","kind":"math","question":"q4","answer":"1/2","also_accepted":["1/2"," 0.5","0.5",""]}
{"id":"c1","source":"gpqa","kind":"choice","question":"q5","choices":["a","b"],"answer":"A","also_accepted":["B"]}
"#,
    );
    let (diags, checker) = check(&[&f]);
    assert_eq!(checker.valid, 1, "{diags:?}");
    assert_eq!(
        diags,
        [
            at(
                &f,
                ":2: also_accepted[0]: AIME answers are integers from 0 to 999, got \"81.5\""
            ),
            at(
                &f,
                ":3: also_accepted: expected an array of strings, got a string"
            ),
            at(&f, ":4: also_accepted[0]: repeats the answer"),
            at(&f, ":4: also_accepted[2]: repeats also_accepted[1]"),
            at(&f, ":4: also_accepted[3]: must not be empty"),
            at(&f, ":5: also_accepted: not allowed for kind choice"),
        ]
    );
}

#[test]
fn duplicate_ids_and_content_across_files() {
    let d = Dir::new();
    let a = d.write("a.jsonl", format!("{GOOD_MATH}\n").as_bytes());
    let same_id = GOOD_MATH.replace("1+1?", "3+3?");
    let same_content = GOOD_MATH
        .replace("\"m1\"", "\"m9\"")
        .replace("1+1?", "  1+1? ");
    let b = d.write("b.jsonl", format!("{same_id}\n{same_content}\n").as_bytes());
    let (diags, checker) = check(&[&a, &b]);
    assert_eq!(checker.valid, 1);
    assert_eq!(
        diags,
        [
            at(
                &b,
                &format!(
                    ":1: id: duplicate id \"m1\", first seen at {}:1",
                    a.display()
                )
            ),
            at(
                &b,
                &format!(
                    ":2: (row): duplicate content: same problem as {}:1 (id \"m1\")",
                    a.display()
                )
            ),
        ]
    );
}

#[test]
fn judge_prompts_take_no_target_and_may_read_alike_but_never_share_an_id() {
    let d = Dir::new();
    let f = d.write(
        "judge.jsonl",
        br#"{"id":"j1","source":"judge","kind":"judge","question":"Judge this block."}
{"id":"j2","source":"judge","kind":"judge","question":"Judge this block."}
{"id":"j1","source":"judge","kind":"judge","question":"Another block."}
{"id":"j3","source":"judge","kind":"judge","question":"q","answer":"1","choices":["a","b"],"tests":{"type":"stdio","cases":[]}}
"#,
    );
    let (diags, checker) = check(&[&f]);
    // Two rows' prompts that read the same are both kept, each under its own id.
    assert_eq!(checker.valid, 2);
    assert_eq!(
        diags,
        [
            at(
                &f,
                &format!(
                    ":3: id: duplicate id \"j1\", first seen at {}:1",
                    f.display()
                )
            ),
            at(&f, ":4: answer: not allowed for kind judge"),
            at(&f, ":4: choices: not allowed for kind judge"),
            at(&f, ":4: tests: not allowed for kind judge"),
        ]
    );
}

#[test]
fn missing_ids_become_content_hashes() {
    let d = Dir::new();
    let row = r#"{"source":"math","kind":"math","question":"What  is 1+1?","answer":"2"}"#;
    let f = d.write("noid.jsonl", format!("{row}\n").as_bytes());
    let mut problems = Vec::new();
    Checker::default().check_file(&f, &mut |d| panic!("{d}"), &mut |p| problems.push(p));
    assert_eq!(problems.len(), 1);
    let id = problems[0].id.as_str();
    assert_eq!(id.len(), 64);
    assert_eq!(id, hex_of(problems[0].content_sha256()));
}

fn hex_of(bytes: [u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes rows given as JSON to a Parquet file whose columns have the given types.
fn parquet_file(path: &Path, schema: arrow_schema::Schema, rows: &[serde_json::Value]) {
    let schema = std::sync::Arc::new(schema);
    let mut decoder = arrow_json::ReaderBuilder::new(schema.clone())
        .build_decoder()
        .unwrap();
    decoder.serialize(rows).unwrap();
    let batch = decoder.flush().unwrap().unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

#[test]
fn parquet_rows_are_checked_with_their_row_index() {
    use arrow_schema::{DataType, Field, Fields, Schema};
    use serde_json::json;
    let d = Dir::new();
    let path = d.0.path().join("problems.parquet");
    let case = Fields::from(vec![
        Field::new("input", DataType::Utf8, false),
        Field::new("output", DataType::Utf8, false),
    ]);
    let tests = Fields::from(vec![
        Field::new("type", DataType::Utf8, false),
        Field::new(
            "cases",
            DataType::List(std::sync::Arc::new(Field::new(
                "item",
                DataType::Struct(case),
                false,
            ))),
            true,
        ),
    ]);
    let schema = Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("source", DataType::Utf8, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("question", DataType::Utf8, false),
        Field::new("answer", DataType::Int64, true),
        Field::new("tests", DataType::Struct(tests), true),
    ]);
    parquet_file(
        &path,
        schema,
        &[
            json!({"id": "c1", "source": "lcb", "kind": "code", "question": "echo",
                   "tests": {"type": "stdio", "cases": [{"input": "a", "output": "a"}]}}),
            json!({"id": "m1", "source": "math", "kind": "math", "question": "1+1", "answer": 2}),
        ],
    );
    let (diags, checker) = check(&[&path]);
    assert_eq!(
        diags,
        [at(&path, ":row 1: answer: expected a string, got a number")]
    );
    assert_eq!(checker.valid, 1);
    assert_eq!(
        checker.counts.get(&("lcb".into(), ProblemKind::Code)),
        Some(&1)
    );
}

#[test]
fn a_truncated_parquet_file_is_named() {
    use serde_json::json;
    let d = Dir::new();
    let path = d.0.path().join("cut.parquet");
    let schema = arrow_schema::Schema::new(vec![arrow_schema::Field::new(
        "question",
        arrow_schema::DataType::Utf8,
        false,
    )]);
    parquet_file(&path, schema, &[json!({"question": "q"})]);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 9]).unwrap();
    let (diags, _) = check(&[&path]);
    assert_eq!(diags.len(), 1);
    assert!(
        diags[0].starts_with(&at(&path, ": (file): not a readable Parquet file:")),
        "{}",
        diags[0]
    );
}

#[test]
fn problem_files_are_never_read_whole_even_when_named_json() {
    let d = Dir::new();
    let f = d.write("array.json", b"[\n{\"id\": 1}\n]\n");
    let (diags, _) = check(&[&f]);
    assert_eq!(diags.len(), 6, "{diags:?}");
    assert!(
        diags[0].starts_with(&at(&f, ":1: (row): invalid JSON")),
        "{}",
        diags[0]
    );
    assert!(
        diags[0].ends_with("`startctl import` reads JSON documents)"),
        "{}",
        diags[0]
    );
    assert_eq!(diags[1], at(&f, ":2: id: expected a string, got a number"));
    assert!(
        diags[5].starts_with(&at(&f, ":3: (row): invalid JSON")),
        "{}",
        diags[5]
    );
}

/// Hex sha256 of `bytes`.
fn sha_of(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[test]
fn attached_files_are_checked_and_every_error_names_the_problem_and_the_file() {
    let d = Dir::new();
    let csv = b"region,revenue\nNorth,10\n";
    d.write("sales.csv", csv);
    std::fs::create_dir_all(d.0.path().join("data")).unwrap();
    d.write("data/ok.csv", csv);
    d.write("data/not-parquet.parquet", csv);
    d.write("data/changed.csv", b"region,revenue\nNorth,11\n");
    // Measured before it is read: a 40 MiB file is refused without loading it.
    let big = std::fs::File::create(d.0.path().join("big.csv")).unwrap();
    big.set_len(40 << 20).unwrap();
    let sha = sha_of(csv);
    let row = |id: &str, files: &str| {
        format!(
            r#"{{"id":"{id}","source":"t","kind":"math","question":"{id}?","answer":"1","files":{files}}}"#
        )
    };
    let rows = [
        row(
            "ok",
            &format!(
                r#"[{{"path":"sales.csv","sha256":"{sha}"}},{{"path":"data/ok.csv","name":"other.csv","sha256":"{sha}","size":{}}}]"#,
                csv.len()
            ),
        ),
        row(
            "missing",
            &format!(r#"[{{"path":"data/none.csv","sha256":"{sha}"}}]"#),
        ),
        row(
            "changed",
            &format!(r#"[{{"path":"data/changed.csv","sha256":"{sha}"}}]"#),
        ),
        row(
            "format",
            &format!(r#"[{{"path":"data/not-parquet.parquet","sha256":"{sha}"}}]"#),
        ),
        row(
            "big",
            &format!(r#"[{{"path":"big.csv","sha256":"{sha}"}}]"#),
        ),
        row(
            "size",
            &format!(r#"[{{"path":"sales.csv","sha256":"{sha}","size":3}}]"#),
        ),
        row("escape", r#"[{"path":"../secret.csv","sha256":"00"}]"#),
        row(
            "names",
            &format!(
                r#"[{{"path":"sales.csv","sha256":"{sha}"}},{{"path":"data/ok.csv","name":"sales.csv","sha256":"{sha}"}},{{"path":"sales.csv","name":"notes.txt","sha256":"{sha}"}},{{"path":"sales.csv","name":"sales.db","sha256":"{sha}"}}]"#
            ),
        ),
        row(
            "shape",
            r#"[{"sha256":"x"}, "sales.csv", {"path":"sales.csv","sha256":"AB","mode":"ro"}]"#,
        ),
        row(
            "many",
            &format!(
                "[{}]",
                (0..9)
                    .map(|i| format!(
                        r#"{{"path":"sales.csv","name":"s{i}.csv","sha256":"{sha}"}}"#
                    ))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        ),
        row(
            "declared",
            r#"[{"path":"sales.csv","sha256":"0000000000000000000000000000000000000000000000000000000000000000","size":33554433}]"#,
        ),
    ];
    let f = d.write("p.jsonl", rows.join("\n").as_bytes());
    let (diags, checker) = check(&[&f]);
    let line = |n: usize, rest: &str| at(&f, &format!(":{n}: {rest}"));
    let full = |name: &str| d.0.path().join(name).display().to_string();
    let expected = [
        line(2, &format!("files[0]: problem \"missing\": file data/none.csv: cannot open {}: No such file or directory (os error 2)", full("data/none.csv"))),
        line(3, &format!("files[0]: problem \"changed\": file data/changed.csv: has sha256 {}, but the row says {sha}", sha_of(b"region,revenue\nNorth,11\n"))),
        line(4, "files[0]: problem \"format\": file data/not-parquet.parquet: is not a Parquet file (it does not begin and end with PAR1)"),
        line(5, "files[0]: problem \"big\": file big.csv: is 41943040 bytes, over the 32 MiB limit for an attached file"),
        line(6, &format!("files[0]: problem \"size\": file sales.csv: is {} bytes, but the row says 3", csv.len())),
        line(7, "files[0].path: \"../secret.csv\" must stay below the problem file's directory (no '..' or '.')"),
        line(7, "files[0].sha256: \"00\" is not 64 hex digits"),
        line(8, "files[1].name: \"sales.csv\" is attached already, as files[0]"),
        line(8, "files[2].name: \"notes.txt\" is not a data file start reads: name it .csv, .parquet, .sqlite, .sqlite3 or .db"),
        line(8, "files[3].name: \"sales.db\" would be SQL table \"sales\", as \"sales.csv\" (files[0]) is: rename one"),
        line(9, "files[0].path: missing; give the file's path relative to the problem file"),
        line(9, "files[0].sha256: \"x\" is not 64 hex digits"),
        line(9, "files[1]: expected an object, got a string"),
        line(9, "files[2].mode: unknown field; expected one of: path, name, sha256, size"),
        line(9, "files[2].sha256: \"ab\" is not 64 hex digits"),
        line(10, "files: has 9 files; a problem attaches at most 8"),
        line(11, "files[0].size: expected bytes from 0 to 33554432 (32 MiB), got 33554433"),
    ];
    assert_eq!(diags.len(), expected.len(), "{diags:#?}");
    for (got, want) in diags.iter().zip(&expected) {
        assert!(got.starts_with(want.as_str()), "got  {got}\nwant {want}");
    }
    assert_eq!(checker.valid, 1, "only the first row is valid");
}
