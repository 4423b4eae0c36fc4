//! Shards written by start, read back by start and by real outside readers (pyarrow, DuckDB),
//! and the commit rules that keep a dataset exact: atomic files, a manifest that records each
//! shard once, and refusal of anything inconsistent.

use start_schemas::dataset::{Dataset, DatasetError};
use start_schemas::manifest::Manifest;
use start_schemas::shard::{ShardOptions, ShardWriter};
use start_schemas::trajectory::Trajectory;
use start_tests::trajectory;
use std::path::Path;
use std::process::Command;

/// Writes `rows` as shards of `per_shard` rows each with small row groups.
fn write_dataset(root: &Path, rows: &[Trajectory], per_shard: usize) {
    let options = ShardOptions {
        row_group_rows: 4,
        ..ShardOptions::default()
    };
    for (n, chunk) in rows.chunks(per_shard).enumerate() {
        let mut writer = ShardWriter::create(root, &format!("unit-{n:05}"), &options).unwrap();
        // Two calls per shard, to cover appends.
        let (a, b) = chunk.split_at(chunk.len() / 2);
        writer.write(a).unwrap();
        writer.write(b).unwrap();
        let entry = writer.commit().unwrap();
        assert_eq!(entry.rows, chunk.len() as u64);
    }
}

fn read_all(root: &Path) -> Vec<Trajectory> {
    let dataset = Dataset::open(root).unwrap();
    let mut out = Vec::new();
    for shard in &dataset.manifest.shards {
        dataset.verify(shard).unwrap();
        for batch in dataset.read_shard(shard, 3).unwrap() {
            out.extend(batch.unwrap());
        }
    }
    out
}

#[test]
fn shards_round_trip_through_start_itself() {
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<_> = (0..23).map(trajectory).collect();
    write_dataset(dir.path(), &rows, 10);
    let manifest = Manifest::load(dir.path()).unwrap();
    assert_eq!(manifest.shards.len(), 3);
    assert_eq!(manifest.rows(), 23);
    assert_eq!(read_all(dir.path()), rows);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("shards"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
}

#[test]
fn pyarrow_and_duckdb_read_the_same_values() {
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<_> = (0..17).map(trajectory).collect();
    write_dataset(dir.path(), &rows, 8);
    let expected = dir.path().join("expected.json");
    std::fs::write(&expected, serde_json::to_vec(&rows).unwrap()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/read_shard.py");
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(&python)
        .arg(&script)
        .arg(dir.path())
        .arg(&expected)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python} (run scripts/setup): {e}"));
    assert!(
        out.status.success(),
        "the python readers disagree (run scripts/setup if pyarrow or duckdb is missing):\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("pyarrow: 17 rows equal"));
}

#[test]
fn an_abandoned_writer_leaves_nothing_visible() {
    let dir = tempfile::tempdir().unwrap();
    write_dataset(dir.path(), &[trajectory(0), trajectory(1)], 2);
    let mut writer =
        ShardWriter::create(dir.path(), "unit-crashed", &ShardOptions::default()).unwrap();
    writer.write(&[trajectory(5)]).unwrap();
    drop(writer);
    let manifest = Manifest::load(dir.path()).unwrap();
    assert_eq!(manifest.rows(), 2);
    assert!(!dir.path().join("shards/unit-crashed.parquet").exists());
}

#[test]
fn inconsistent_rows_are_refused_with_their_index() {
    let dir = tempfile::tempdir().unwrap();
    let mut bad = trajectory(3);
    bad.full_text.push_str(" edited after the fact");
    let mut writer = ShardWriter::create(dir.path(), "unit-bad", &ShardOptions::default()).unwrap();
    let err = writer.write(&[trajectory(2), bad]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "row 1 (problem problem-1): full_text is not the concatenation of the segments' texts"
    );
    assert_eq!(writer.rows(), 0, "nothing of a refused call is written");
}

#[test]
fn shards_are_written_once_and_recorded_once() {
    let dir = tempfile::tempdir().unwrap();
    write_dataset(dir.path(), &[trajectory(0)], 1);
    // Same id again: the file exists, so the second writer is refused and the first kept.
    let mut again =
        ShardWriter::create(dir.path(), "unit-00000", &ShardOptions::default()).unwrap();
    again.write(&[trajectory(1)]).unwrap();
    assert!(matches!(again.commit(), Err(DatasetError::ShardExists(_))));
    assert_eq!(read_all(dir.path()), vec![trajectory(0)]);
    // Recording the same entry twice is a no-op; another hash under the same id is refused.
    let entry = Manifest::load(dir.path()).unwrap().shards[0].clone();
    assert!(!Manifest::record(dir.path(), entry.clone()).unwrap());
    let mut forged = entry;
    forged.sha256 = "0".repeat(64);
    assert!(matches!(
        Manifest::record(dir.path(), forged),
        Err(DatasetError::ShardConflict { .. })
    ));
    assert_eq!(Manifest::load(dir.path()).unwrap().shards.len(), 1);
}

#[test]
fn damaged_shards_and_manifests_are_named() {
    let dir = tempfile::tempdir().unwrap();
    write_dataset(dir.path(), &[trajectory(0), trajectory(1)], 2);
    let dataset = Dataset::open(dir.path()).unwrap();
    let shard = &dataset.manifest.shards[0];
    let path = dataset.shard_path(shard);
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    let err = dataset.verify(shard).unwrap_err().to_string();
    assert!(err.contains("unit-00000.parquet: sha256 is"), "{err}");

    std::fs::write(dir.path().join("manifest.json"), b"{\"format\": 3").unwrap();
    let err = Dataset::open(dir.path()).err().unwrap().to_string();
    assert!(err.contains("manifest.json: invalid manifest:"), "{err}");
    let missing = tempfile::tempdir().unwrap();
    let err = Dataset::open(missing.path()).err().unwrap().to_string();
    assert!(
        err.contains("not found; is this a start dataset directory?"),
        "{err}"
    );
}

#[test]
fn concurrent_committers_lose_no_manifest_entry() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let root = root.clone();
            std::thread::spawn(move || {
                for k in 0..4 {
                    let mut w =
                        ShardWriter::create(&root, &format!("t{t}-k{k}"), &ShardOptions::default())
                            .unwrap();
                    w.write(&[trajectory(t * 4 + k)]).unwrap();
                    w.commit().unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let manifest = Manifest::load(&root).unwrap();
    assert_eq!(manifest.shards.len(), 32);
    assert_eq!(read_all(&root).len(), 32);
}

#[test]
fn a_version_1_dataset_still_reads_its_new_columns_at_their_defaults() {
    // A shard of schema version 1, written by start before the hint provenance existed (a
    // unit of a real `startctl run` on the bundled problems).
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/v1-dataset");
    let dataset = Dataset::open(&root).unwrap();
    assert_eq!(dataset.manifest.shards[0].schema_version, 1);
    let rows = read_all(&root);
    assert_eq!(rows.len(), 4);
    for t in &rows {
        t.check().unwrap();
        assert!(t.user_message.is_empty() && t.prompt_token_ids.is_empty());
        assert!(t.hint_settings.is_none() && t.end_of_turn.is_none());
        assert!(t.segments.iter().all(|s| s.hint.is_none()));
        // Their SFT rows take the user turn from the ChatML prompt; token columns are absent.
        let sft = start_schemas::sft::SftRow::from_trajectory(t).unwrap();
        assert!(t.prompt.contains(&sft.messages[0].content));
        assert!(sft.input_ids.is_none());
        assert_eq!(sft.text, format!("{}{}", t.prompt, t.full_text));
    }
    assert!(
        rows.iter()
            .any(|t| t.finish_reason == start_schemas::trajectory::FinishReason::ToolLimit),
        "version 1 ended trajectories at the tool limit"
    );
    // Rows of both versions go into one dataset, and read back together.
    let dir = tempfile::tempdir().unwrap();
    let mixed = dir.path().join("mixed");
    std::fs::create_dir_all(mixed.join("shards")).unwrap();
    let old = &dataset.manifest.shards[0];
    std::fs::copy(root.join(&old.path), mixed.join(&old.path)).unwrap();
    Manifest::record(&mixed, old.clone()).unwrap();
    write_dataset(&mixed, &[trajectory(0), trajectory(1)], 2);
    let all = read_all(&mixed);
    assert_eq!(all.len(), 6);
    assert_eq!(all[4], trajectory(0));
}
