//! Attached files, the SQL tool and figures, on both backends: files reach a block read-only
//! and unchanged by any block before it, SQL queries them as tables and refuses whatever would
//! reach outside them, and matplotlib figures come back as PNG. The hostile battery of
//! `hostile.rs` has its SQL counterpart here.

mod common;

use common::{one_runner, still_works};
use start_sandbox::{BackendKind, ExecRequest, ExecResult, Language, Sandbox, SandboxFile};
use std::time::Duration;

fn sales() -> SandboxFile {
    SandboxFile::new(
        "sales.csv",
        &include_bytes!("../../examples/data-analysis/sales.csv")[..],
    )
}

fn returns() -> SandboxFile {
    SandboxFile::new(
        "returns.parquet",
        &include_bytes!("../../examples/data-analysis/returns.parquet")[..],
    )
}

fn stores() -> SandboxFile {
    SandboxFile::new(
        "stores.sqlite",
        &include_bytes!("../../examples/data-analysis/stores.sqlite")[..],
    )
}

async fn exec(sb: &Sandbox, language: Language, code: &str, files: &[SandboxFile]) -> ExecResult {
    sb.execute(ExecRequest {
        language,
        files: files.to_vec(),
        timeout: Duration::from_secs(5),
        memory_mb: 256,
        max_output_bytes: 8192,
        ..ExecRequest::new(code)
    })
    .await
    .expect("the pool answers")
}

async fn sql(sb: &Sandbox, code: &str, files: &[SandboxFile]) -> ExecResult {
    exec(sb, Language::Sql, code, files).await
}

async fn python(sb: &Sandbox, code: &str, files: &[SandboxFile]) -> ExecResult {
    exec(sb, Language::Python, code, files).await
}

/// SQL over CSV and SQLite files (the standard library's), as the example set's answers need
/// it; Parquet needs pyarrow, which the image has and a host's Python may not
/// ([`sql_reads_parquet`]).
async fn sql_reads_csv_and_sqlite_as_tables(sb: &Sandbox) {
    let r = sql(
        sb,
        "-- November's revenue\nSELECT substr(date, 1, 7) AS month, SUM(revenue) AS revenue\n\
         FROM sales WHERE date LIKE '2024-11%' GROUP BY month;",
        &[sales()],
    )
    .await;
    assert_eq!(r.exit_code, Some(0), "{r:?}");
    assert_eq!(
        r.stdout, "month   | revenue\n--------+--------\n2024-11 | 243109\n(1 row)\n",
        "{r:?}"
    );
    let r = sql(
        sb,
        "SELECT COUNT(*) AS open FROM stores.stores\n\
         WHERE opened <= '2024-11-15' AND (closed IS NULL OR closed >= '2024-11-15');\n\
         SELECT COUNT(*) AS north FROM stores WHERE region = 'North';",
        &[stores()],
    )
    .await;
    assert_eq!(r.exit_code, Some(0), "{r:?}");
    assert!(r.stdout.contains("open\n----\n7\n"), "{r:?}");
    assert!(
        r.stdout.contains("north\n-----\n3\n"),
        "unqualified names find it too: {r:?}"
    );
    // Scratch objects go in temp; a long result keeps its first rows and says how many more.
    let r = sql(
        sb,
        "CREATE TEMP TABLE by_region AS SELECT region, SUM(revenue) AS r FROM sales GROUP BY region;\n\
         SELECT COUNT(*) AS regions FROM by_region;\n\
         SELECT date, region, product FROM sales;",
        &[sales()],
    )
    .await;
    assert_eq!(r.exit_code, Some(0), "{r:?}");
    assert!(
        r.stdout.starts_with("regions\n-------\n4\n(1 row)\n"),
        "{r:?}"
    );
    assert!(
        r.stdout.contains("... 4343 more rows (4393 rows in all)"),
        "{r:?}"
    );
    let r = sql(sb, "SELEC 1;", &[]).await;
    assert_eq!(r.exit_code, Some(1), "{r:?}");
    assert!(r.stderr.contains("syntax error"), "{r:?}");
}

/// Parquet, as a SQL table and through pandas, with the image's pyarrow.
async fn sql_reads_parquet(sb: &Sandbox) {
    let r = sql(
        sb,
        "SELECT SUM(amount) AS returned FROM returns WHERE region = 'North' AND date LIKE '2024-11%';",
        &[returns(), stores()],
    )
    .await;
    assert_eq!(r.exit_code, Some(0), "{r:?}");
    assert_eq!(r.stdout, "returned\n--------\n3105\n(1 row)\n", "{r:?}");
    let r = python(
        sb,
        "import pandas as pd\nr = pd.read_parquet('returns.parquet')\ns = pd.read_csv('sales.csv')\n\
         print(len(r), int(r.amount.sum()), len(s), int(s.revenue.sum()))",
        &[returns(), sales()],
    )
    .await;
    assert_eq!(r.exit_code, Some(0), "{r:?}");
    assert_eq!(r.stdout, "212 48232 4393 3165851\n", "{r:?}");
}

/// Every statement that would reach outside the attached data is refused, as the block's
/// own error, and nothing after it runs.
async fn sql_refuses_what_reaches_outside_the_data(sb: &Sandbox) {
    let refused = [
        ("ATTACH DATABASE '/tmp/other.db' AS other", "ATTACH"),
        ("VACUUM INTO '/tmp/copy.db'", "ATTACH"),
        ("VACUUM", "ATTACH"),
        (
            "SELECT load_extension('/tmp/evil')",
            "load_extension() is not allowed",
        ),
        ("INSERT INTO sales (region) VALUES ('x')", "read-only"),
        ("UPDATE sales SET revenue = 0", "read-only"),
        ("DELETE FROM sales", "read-only"),
        (
            "DROP TABLE sales",
            "would change the attached data's tables",
        ),
        (
            "CREATE TABLE copy AS SELECT * FROM sales",
            "would change the attached data's tables",
        ),
        (
            "ALTER TABLE sales ADD COLUMN x",
            "only queries and temp objects",
        ),
        (
            "PRAGMA writable_schema = ON",
            "PRAGMA writable_schema is not allowed",
        ),
        (
            "PRAGMA query_only = OFF",
            "PRAGMA query_only is not allowed",
        ),
        (
            "CREATE VIRTUAL TABLE v USING fts5(a)",
            "would change the attached data's tables",
        ),
        ("ANALYZE", "would change the attached data's tables"),
        ("DETACH stores", "DETACH"),
        (
            "INSERT INTO stores.stores VALUES (99, 'x', 'y', 'z', NULL)",
            "read-only",
        ),
    ];
    for (stmt, why) in refused {
        let code = format!("SELECT 'before';\n{stmt};\nSELECT 'after';");
        let r = sql(sb, &code, &[sales(), stores()]).await;
        assert_eq!(r.exit_code, Some(1), "{stmt}: {r:?}");
        assert!(
            r.stderr.contains("Error in statement 2: refused: ") && r.stderr.contains(why),
            "{stmt}: {r:?}"
        );
        assert!(
            r.stdout.contains("before") && !r.stdout.contains("after"),
            "{stmt}: {r:?}"
        );
        assert!(
            r.error.is_none(),
            "a refusal is the block's error, not the sandbox's"
        );
    }
    let r = python(sb, "import os\nprint(sorted(os.listdir('/tmp')))", &[]).await;
    assert!(
        !r.stdout.contains("copy.db") && !r.stdout.contains("other.db"),
        "{r:?}"
    );
}

/// The files are in the working directory, read-only; no block can change what the next one
/// reads, whatever it tries; a block without files sees none.
async fn files_are_read_only_and_survive_hostile_blocks(sb: &Sandbox) {
    let f = sales();
    let r = python(
        sb,
        "import csv\nrows = list(csv.DictReader(open('sales.csv')))\n\
         print(len(rows), sum(int(r['revenue']) for r in rows))",
        std::slice::from_ref(&f),
    )
    .await;
    assert_eq!(r.exit_code, Some(0), "{r:?}");
    assert_eq!(r.stdout, "4393 3165851\n", "{r:?}");
    let hostile = r#"import os
real = os.path.realpath('sales.csv')
for what, act in [
    ('append', lambda: open('sales.csv', 'a').write('x')),
    ('write real', lambda: open(real, 'w').write('x')),
    ('truncate', lambda: os.truncate(real, 0)),
    ('unlink real', lambda: os.unlink(real)),
    ('rename real', lambda: os.rename(real, real + '.x')),
    ('new file beside', lambda: open(os.path.join(os.path.dirname(real), 'x'), 'w')),
    ('chmod then write', lambda: (os.chmod(real, 0o666), open(real, 'w').write('x'))),
]:
    try:
        act()
        print(what, 'ALLOWED')
    except OSError as e:
        print(what, 'refused')
os.unlink('sales.csv')
open('sales.csv', 'w').write('fake,data\n1,2\n')
print(open('sales.csv').read().splitlines()[0])"#;
    let r = python(sb, hostile, std::slice::from_ref(&f)).await;
    assert_eq!(r.exit_code, Some(0), "{r:?}");
    assert!(!r.stdout.contains("ALLOWED"), "{r:?}");
    assert_eq!(r.stdout.matches("refused").count(), 7, "{r:?}");
    assert!(
        r.stdout.ends_with("fake,data\n"),
        "a block's own copy is its own: {r:?}"
    );
    // The next block reads exactly the bytes that were sent.
    let r = python(
        sb,
        "import hashlib\nprint(hashlib.sha256(open('sales.csv', 'rb').read()).hexdigest())",
        std::slice::from_ref(&f),
    )
    .await;
    assert_eq!(r.stdout.trim(), f.sha256, "{r:?}");
    let r = python(sb, "import os\nprint(sorted(os.listdir('.')))", &[]).await;
    assert_eq!(r.stdout, "[]\n", "a block without files sees none: {r:?}");
}

/// What a block tries to read of files that are not its own: the data directory listed, a
/// file opened by its hash name, directly, through /proc/self/root, through a symlink and a
/// hard link it makes. `path` is the other file's full path on the runner's file system.
fn peek_code(path: &str) -> String {
    format!(
        r#"import os
other = {path:?}
data = os.path.dirname(other)
for what, act in [
    ('list the data directory', lambda: os.listdir(data)),
    ('open by hash', lambda: open(other, 'rb').read()),
    ('open through /proc', lambda: open('/proc/self/root' + other, 'rb').read()),
    ('open a symlink to it', lambda: (os.symlink(other, 'peek'), open('peek', 'rb').read())),
    ('hard-link it', lambda: os.link(other, 'peek2')),
]:
    try:
        act()
        print(what, 'ALLOWED')
    except OSError as e:
        print(what, 'refused')
"#
    )
}

/// A block reads its own problem's files and nothing else the runner keeps: not another
/// problem's (another job's) file by its hash name, nor a list of the hashes, however it asks;
/// the other problem's next block still reads its file.
async fn a_block_reads_no_other_problems_files(sb: &Sandbox) {
    let theirs = SandboxFile::new("theirs.csv", &b"team,secret\nA,42\n"[..]);
    let mine = SandboxFile::new("mine.csv", &b"team,value\nB,7\n"[..]);
    let where_code = "import os\nprint(os.path.realpath('theirs.csv'))\nprint(open('theirs.csv').read(), end='')";
    let r = python(sb, where_code, std::slice::from_ref(&theirs)).await;
    assert_eq!(r.exit_code, Some(0), "{r:?}");
    let other = r.stdout.lines().next().unwrap_or_default().to_string();
    assert!(other.ends_with(&theirs.sha256), "kept by hash: {r:?}");
    assert!(r.stdout.ends_with("A,42\n"), "{r:?}");
    let code = format!(
        "print(open('mine.csv').read(), end='')\n{}",
        peek_code(&other)
    );
    let r = python(sb, &code, std::slice::from_ref(&mine)).await;
    assert_eq!(r.exit_code, Some(0), "{r:?}");
    assert!(
        r.stdout.starts_with("team,value\nB,7\n"),
        "its own file: {r:?}"
    );
    assert!(!r.stdout.contains("ALLOWED"), "{}", r.stdout);
    assert_eq!(r.stdout.matches("refused").count(), 5, "{r:?}");
    // The SQL tool's interpreter is confined alike (it reads only the files it is given).
    let r = sql(sb, "SELECT * FROM mine;", std::slice::from_ref(&mine)).await;
    assert_eq!(r.exit_code, Some(0), "{r:?}");
    // So is a session's interpreter, which lives across its trajectory's blocks.
    let in_session = |code: String| ExecRequest {
        files: vec![mine.clone()],
        session: Some("trajectory-b".into()),
        timeout: Duration::from_secs(5),
        memory_mb: 256,
        max_output_bytes: 8192,
        ..ExecRequest::new(code)
    };
    let r = sb
        .execute(in_session("x = open('mine.csv').read()".into()))
        .await
        .expect("the pool answers");
    assert_eq!(r.exit_code, Some(0), "{r:?}");
    let r = sb
        .execute(in_session(format!(
            "print(x, end='')\n{}",
            peek_code(&other)
        )))
        .await
        .expect("the pool answers");
    assert!(r.stdout.starts_with("team,value\nB,7\n"), "{r:?}");
    assert!(!r.stdout.contains("ALLOWED"), "{}", r.stdout);
    assert_eq!(r.stdout.matches("refused").count(), 5, "{r:?}");
    sb.close_session("trajectory-b")
        .await
        .expect("the session closes");
    let r = python(sb, "print(open('theirs.csv').read(), end='')", &[theirs]).await;
    assert_eq!(r.stdout, "team,secret\nA,42\n", "{r:?}");
}

/// Figures drawn with matplotlib come back as PNG: each plt.show(), and what is left open.
async fn figures_come_back_as_png(sb: &Sandbox) {
    let r = python(
        sb,
        "import matplotlib.pyplot as plt\n\
         plt.plot([1, 2, 3], [3, 1, 2]); plt.title('first'); plt.show()\n\
         fig, ax = plt.subplots(figsize=(4, 3)); ax.bar(['a', 'b'], [1, 2])\n\
         print('drawn')",
        &[],
    )
    .await;
    assert_eq!(r.exit_code, Some(0), "{r:?}");
    assert_eq!(r.stdout, "drawn\n", "{r:?}");
    assert!(
        r.stderr.is_empty(),
        "no warning about a non-interactive backend: {r:?}"
    );
    let sizes: Vec<(u32, u32)> = r.figures.iter().map(|f| (f.width, f.height)).collect();
    assert_eq!(sizes, [(640, 480), (400, 300)], "{r:?}");
    for f in &r.figures {
        assert!(
            f.png.starts_with(b"\x89PNG\r\n\x1a\n") && f.png.len() > 1000,
            "{f:?}"
        );
    }
    let r = python(
        sb,
        "import matplotlib.pyplot as plt\nfor i in range(11):\n    plt.figure(); plt.plot([i]); plt.show()",
        &[],
    )
    .await;
    assert_eq!(r.figures.len(), 8, "{r:?}");
    assert_eq!(r.figures_dropped, 3, "{r:?}");
    let r = python(sb, "print('no figure')", &[]).await;
    assert!(r.figures.is_empty() && r.figures_dropped == 0, "{r:?}");
}

/// The hostile battery, in SQL: each comes back with the right flags and the runner serves the
/// next block.
async fn sql_hostile_battery(sb: &Sandbox) {
    let r = sql(
        sb,
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT COUNT(*) FROM c;",
        &[],
    )
    .await;
    assert!(
        r.timed_out && r.exit_code.is_none(),
        "endless recursion: {r:?}"
    );
    still_works(sb).await;
    let r = sql(
        sb,
        "SELECT length(group_concat(hex(randomblob(1000000)))) FROM \
         (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 3000) SELECT x FROM c);",
        &[],
    )
    .await;
    assert!(r.memory_exceeded, "a 6 GB string: {r:?}");
    still_works(sb).await;
    let r = sql(
        sb,
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 200) \
         SELECT x, hex(randomblob(5000)) AS blob FROM c;",
        &[],
    )
    .await;
    assert_eq!(r.exit_code, Some(0), "{r:?}");
    assert!(
        r.truncated,
        "wide rows are cut to the output limit: {:?}",
        r.stdout.len()
    );
    assert!(r.stdout.len() < 8192 + 200, "{}", r.stdout.len());
    still_works(sb).await;
    let r = sql(sb, "SELECT * FROM sales;", &[]).await;
    assert_eq!(r.exit_code, Some(1), "no file, no table: {r:?}");
    assert!(r.stderr.contains("no such table: sales"), "{r:?}");
    let bad = SandboxFile {
        name: "../../escape.csv".into(),
        ..sales()
    };
    let refused = sb
        .execute(ExecRequest {
            language: Language::Sql,
            files: vec![bad],
            ..ExecRequest::new("SELECT 1;")
        })
        .await;
    assert!(
        matches!(&refused, Err(e) if e.to_string().contains("is not allowed")),
        "a file name with a path never reaches a block: {refused:?}"
    );
    still_works(sb).await;
}

async fn all(backend: BackendKind) {
    let sb = one_runner(backend).await;
    sql_reads_csv_and_sqlite_as_tables(&sb).await;
    sql_refuses_what_reaches_outside_the_data(&sb).await;
    files_are_read_only_and_survive_hostile_blocks(&sb).await;
    a_block_reads_no_other_problems_files(&sb).await;
    if backend == BackendKind::Docker {
        // The process backend runs the host's Python, which need not have pyarrow, pandas
        // or matplotlib; the image has them.
        sql_reads_parquet(&sb).await;
        figures_come_back_as_png(&sb).await;
    }
    sql_hostile_battery(&sb).await;
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_attached_data_sql_and_figures() {
    all(BackendKind::Docker).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_attached_data_and_sql() {
    all(BackendKind::Process).await;
}

/// Two process pools on one host (two workers, two jobs): a block of one reads nothing of the
/// other's files, though the process backend shares the host's file system.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_pools_read_nothing_of_each_other() {
    let a = one_runner(BackendKind::Process).await;
    let b = one_runner(BackendKind::Process).await;
    let theirs = SandboxFile::new("theirs.csv", &b"team,secret\nA,42\n"[..]);
    let r = python(
        &a,
        "import os\nprint(os.path.realpath('theirs.csv'))\nprint(os.getcwd())",
        &[theirs],
    )
    .await;
    assert_eq!(r.exit_code, Some(0), "{r:?}");
    let mut lines = r.stdout.lines();
    let (other, scratch) = (lines.next().unwrap(), lines.next().unwrap());
    let mut code = peek_code(other);
    code.push_str(&format!(
        "try:\n    os.listdir({scratch:?})\n    print('list their scratch ALLOWED')\n\
         except OSError:\n    print('list their scratch refused')\n"
    ));
    let r = python(&b, &code, &[]).await;
    assert_eq!(r.exit_code, Some(0), "{r:?}");
    assert!(!r.stdout.contains("ALLOWED"), "{}", r.stdout);
    assert_eq!(r.stdout.matches("refused").count(), 6, "{r:?}");
    a.shutdown().await;
    b.shutdown().await;
}
