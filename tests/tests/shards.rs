//! Shards written by start, read back by start and by real outside readers (pyarrow, DuckDB,
//! polars, Hugging Face datasets), and the commit rules that keep a dataset exact: staged
//! uploads, a manifest that records each shard once through a conditional write, refusal of
//! anything inconsistent, and datasets of the layout before object storage. The same rules
//! on a real S3 server are in object_store.rs.

use start_dataset::{
    commit, Dataset, DatasetError, DatasetLocation, Manifest, ShardEntry, ShardOptions, ShardWriter,
};
use start_schemas::trajectory::Trajectory;
use start_tests::trajectory;
use std::path::Path;

/// Writes `rows` as committed shards of `per_shard` rows each, with small row groups.
async fn write_dataset(loc: &DatasetLocation, rows: &[Trajectory], per_shard: usize) {
    let options = ShardOptions {
        row_group_rows: 4,
        ..ShardOptions::default()
    };
    for (n, chunk) in rows.chunks(per_shard).enumerate() {
        let mut writer = ShardWriter::create(&format!("unit-{n:05}"), &options).unwrap();
        // Two calls per shard, to cover appends.
        let (a, b) = chunk.split_at(chunk.len() / 2);
        writer.write(a).unwrap();
        writer.write(b).unwrap();
        let entry = writer.finish().unwrap().commit(loc).await.unwrap();
        assert_eq!(entry.rows, chunk.len() as u64);
    }
}

/// Stages a shard without committing it: an upload whose report never made it.
async fn stage_only(loc: &DatasetLocation, id: &str, rows: &[Trajectory]) -> ShardEntry {
    let mut writer = ShardWriter::create(id, &ShardOptions::default()).unwrap();
    writer.write(rows).unwrap();
    writer.finish().unwrap().stage(loc).await.unwrap()
}

async fn read_all(loc: &DatasetLocation) -> Vec<Trajectory> {
    let dataset = Dataset::open(loc.clone()).await.unwrap();
    let mut out = Vec::new();
    for shard in &dataset.manifest.shards {
        dataset.verify(shard).await.unwrap();
        for batch in dataset.read_shard(shard, 3).await.unwrap() {
            out.extend(batch.unwrap());
        }
    }
    out
}

#[tokio::test]
async fn shards_round_trip_through_start_itself_in_the_committed_layout() {
    let dir = tempfile::tempdir().unwrap();
    let loc = DatasetLocation::local(dir.path()).unwrap();
    let rows: Vec<_> = (0..23).map(trajectory).collect();
    write_dataset(&loc, &rows, 10).await;
    let manifest = Manifest::load(&loc).await.unwrap().unwrap();
    assert_eq!(
        (manifest.shards.len(), manifest.rows(), manifest.layout),
        (3, 23, 2)
    );
    assert_eq!(read_all(&loc).await, rows);
    // data/ holds the committed shards and nothing else; nothing stays staged.
    assert_eq!(
        loc.list("data").await.unwrap(),
        [
            "data/unit-00000.parquet",
            "data/unit-00001.parquet",
            "data/unit-00002.parquet"
        ]
    );
    assert!(loc.list("_staging").await.unwrap().is_empty());
    let mut top: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    assert_eq!(
        top,
        [
            "README.md",
            "_manifest.json",
            "_manifest.lock",
            "_staging",
            "data"
        ]
    );
}

#[tokio::test]
async fn pyarrow_and_duckdb_read_the_same_values() {
    let dir = tempfile::tempdir().unwrap();
    let loc = DatasetLocation::local(dir.path()).unwrap();
    let rows: Vec<_> = (0..17).map(trajectory).collect();
    write_dataset(&loc, &rows, 8).await;
    let expected = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(expected.path(), serde_json::to_vec(&rows).unwrap()).unwrap();
    let out = start_tests::python::reader(
        "read_shard.py",
        &[
            dir.path().to_str().unwrap(),
            expected.path().to_str().unwrap(),
        ],
    );
    assert!(out.contains("pyarrow: 17 rows equal"), "{out}");
}

#[tokio::test]
async fn four_outside_readers_read_exactly_the_committed_rows() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("dataset");
    let loc = DatasetLocation::local(&root).unwrap();
    let rows: Vec<_> = (0..11).map(trajectory).collect();
    write_dataset(&loc, &rows, 4).await;
    // What must never be read: an upload never committed, and a second copy of a committed
    // shard under its staged name (a publisher that died before deleting it).
    stage_only(
        &loc,
        "unit-never",
        &(20..25).map(trajectory).collect::<Vec<_>>(),
    )
    .await;
    stage_only(&loc, "unit-00000", &rows[..4]).await;
    assert_eq!(loc.list("_staging").await.unwrap().len(), 2);
    // Nor the finished trajectories of a unit not yet committed.
    for row in &rows[..3] {
        start_dataset::pieces::stage(&loc, "job.u00009", row)
            .await
            .unwrap();
    }
    assert_eq!(loc.list("_pieces").await.unwrap().len(), 3);
    let card = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(
        card.starts_with("---\n") && card.contains("path: data/*.parquet"),
        "{card}"
    );
    let out = start_tests::python::reader("outside_readers.py", &[root.to_str().unwrap(), "11"]);
    assert!(
        out.contains("all 7 readers: exactly 11 committed rows"),
        "{out}"
    );
}

#[tokio::test]
async fn an_upload_that_is_never_committed_leaves_nothing_visible() {
    let dir = tempfile::tempdir().unwrap();
    let loc = DatasetLocation::local(dir.path()).unwrap();
    write_dataset(&loc, &[trajectory(0), trajectory(1)], 2).await;
    // A writer dropped before finishing, and one staged but never committed.
    let mut dropped = ShardWriter::create("unit-crashed", &ShardOptions::default()).unwrap();
    dropped.write(&[trajectory(5)]).unwrap();
    drop(dropped);
    stage_only(&loc, "unit-staged", &[trajectory(6)]).await;
    let dataset = Dataset::open(loc.clone()).await.unwrap();
    assert_eq!(dataset.manifest.rows(), 2);
    assert_eq!(loc.list("data").await.unwrap(), ["data/unit-00000.parquet"]);
    // Committing another shard does not sweep the staged one in.
    let mut w = ShardWriter::create("unit-later", &ShardOptions::default()).unwrap();
    w.write(&[trajectory(7)]).unwrap();
    w.finish().unwrap().commit(&loc).await.unwrap();
    assert_eq!(read_all(&loc).await.len(), 3);
}

#[test]
fn inconsistent_rows_are_refused_with_their_index() {
    let mut bad = trajectory(3);
    bad.full_text.push_str(" edited after the fact");
    let mut writer = ShardWriter::create("unit-bad", &ShardOptions::default()).unwrap();
    let err = writer.write(&[trajectory(2), bad]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "row 1 (problem problem-1): full_text is not the concatenation of the segments' texts"
    );
    assert_eq!(writer.rows(), 0, "nothing of a refused call is written");
    assert!(matches!(
        ShardWriter::create("_hidden", &ShardOptions::default()),
        Err(DatasetError::InvalidShardId(_))
    ));
}

#[tokio::test]
async fn shards_are_committed_once() {
    let dir = tempfile::tempdir().unwrap();
    let loc = DatasetLocation::local(dir.path()).unwrap();
    write_dataset(&loc, &[trajectory(0)], 1).await;
    let entry = Manifest::load(&loc).await.unwrap().unwrap().shards[0].clone();
    // The same entry again (a retried commit, a second coordinator): a no-op.
    let again = commit(&loc, vec![entry.clone()], None).await.unwrap();
    assert_eq!(again.added, 0);
    // Another shard under the same id: refused, the first kept.
    let mut other = ShardWriter::create("unit-00000", &ShardOptions::default()).unwrap();
    other.write(&[trajectory(1)]).unwrap();
    let err = other.finish().unwrap().commit(&loc).await.unwrap_err();
    assert!(matches!(err, DatasetError::ShardConflict { .. }), "{err}");
    assert_eq!(read_all(&loc).await, vec![trajectory(0)]);
    // A shard neither staged nor published cannot be committed.
    let mut ghost = entry;
    ghost.shard_id = "unit-ghost".into();
    ghost.path = "data/unit-ghost.parquet".into();
    let err = commit(&loc, vec![ghost], None).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("_staging/unit-ghost.parquet.staged: the shard to commit is not staged"),
        "{err}"
    );
    assert_eq!(Manifest::load(&loc).await.unwrap().unwrap().shards.len(), 1);
}

#[tokio::test]
async fn damaged_shards_and_manifests_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let loc = DatasetLocation::local(dir.path()).unwrap();
    write_dataset(&loc, &[trajectory(0), trajectory(1)], 2).await;
    let dataset = Dataset::open(loc.clone()).await.unwrap();
    let shard = &dataset.manifest.shards[0];
    let path = dir.path().join(&shard.path);
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    let err = dataset.verify(shard).await.unwrap_err().to_string();
    assert!(err.contains("data/unit-00000.parquet: sha256 is"), "{err}");

    std::fs::write(dir.path().join("_manifest.json"), b"{\"format\": 3").unwrap();
    let err = Dataset::open(loc.clone()).await.err().unwrap().to_string();
    assert!(err.contains("_manifest.json: invalid manifest:"), "{err}");
    let missing = tempfile::tempdir().unwrap();
    let err = Dataset::open(DatasetLocation::local(missing.path()).unwrap())
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("not found; is this a start dataset?"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_committers_lose_no_manifest_entry() {
    let dir = tempfile::tempdir().unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            // Each committer opens the dataset itself, as separate processes would.
            let loc = DatasetLocation::local(dir.path()).unwrap();
            tokio::spawn(async move {
                for k in 0..4 {
                    let mut w =
                        ShardWriter::create(&format!("t{t}-k{k}"), &ShardOptions::default())
                            .unwrap();
                    w.write(&[trajectory(t * 4 + k)]).unwrap();
                    w.finish().unwrap().commit(&loc).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let loc = DatasetLocation::local(dir.path()).unwrap();
    let manifest = Manifest::load(&loc).await.unwrap().unwrap();
    assert_eq!(manifest.shards.len(), 32);
    assert_eq!(read_all(&loc).await.len(), 32);
    assert_eq!(loc.list("data").await.unwrap().len(), 32);
}

#[tokio::test]
async fn a_layout_1_dataset_still_reads_and_migrates_on_its_next_commit() {
    // A dataset of layout 1 and schema version 1, written by start before object storage and
    // before the hint provenance existed (a unit of a real `startctl run` on the bundled
    // problems).
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/v1-dataset");
    let dataset = Dataset::open(DatasetLocation::local(&fixture).unwrap())
        .await
        .unwrap();
    assert_eq!(dataset.manifest.layout, 1);
    assert_eq!(dataset.manifest.shards[0].schema_version, 1);
    let rows = read_all(&DatasetLocation::local(&fixture).unwrap()).await;
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
    // A copy of it, with an orphan of a crashed layout-1 writer, takes a new commit: it is
    // migrated, and rows of both schema versions read back together.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("old");
    std::fs::create_dir_all(copy.join("shards")).unwrap();
    std::fs::copy(fixture.join("manifest.json"), copy.join("manifest.json")).unwrap();
    let old = &dataset.manifest.shards[0];
    std::fs::copy(fixture.join(&old.path), copy.join(&old.path)).unwrap();
    std::fs::copy(fixture.join(&old.path), copy.join("shards/orphan.parquet")).unwrap();
    let loc = DatasetLocation::local(&copy).unwrap();
    write_dataset(&loc, &[trajectory(0), trajectory(1)], 2).await;
    let manifest = Manifest::load(&loc).await.unwrap().unwrap();
    assert_eq!(manifest.layout, 2);
    assert!(manifest.shards.iter().all(|s| s.path.starts_with("data/")));
    assert!(!copy.join("manifest.json").exists() && !copy.join("shards").exists());
    assert!(
        copy.join("_orphans/orphan.parquet.orphan").is_file(),
        "orphans are kept, out of every reader's sight"
    );
    let all = read_all(&loc).await;
    assert_eq!(all.len(), 6);
    assert_eq!(all[4], trajectory(0));
}

/// A unit's finished trajectories staged one by one come back exactly, whatever else lies
/// beside them; a piece that cannot be used is skipped with its name and why, never fatal; a
/// committed unit's pieces are deleted.
#[tokio::test]
async fn pieces_restore_the_rows_staged_and_skip_the_damaged_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let loc = DatasetLocation::local(dir.path()).unwrap();
    let rows: Vec<_> = (0..5).map(trajectory).collect();
    let unit = "job-a.u00003";
    for row in &rows {
        start_dataset::pieces::stage(&loc, unit, row).await.unwrap();
    }
    // Staging the same trajectory again (a second attempt that redid it) replaces its piece.
    start_dataset::pieces::stage(&loc, unit, &rows[2])
        .await
        .unwrap();
    // Another unit's pieces are not this unit's.
    start_dataset::pieces::stage(&loc, "job-a.u00004", &trajectory(9))
        .await
        .unwrap();
    let mut back = start_dataset::pieces::restore(&loc, unit).await.unwrap();
    assert!(back.skipped.is_empty(), "{:?}", back.skipped);
    back.rows
        .sort_by(|a, b| (&a.problem_id, a.sample_index).cmp(&(&b.problem_id, b.sample_index)));
    let mut want = rows.clone();
    want.sort_by(|a, b| (&a.problem_id, a.sample_index).cmp(&(&b.problem_id, b.sample_index)));
    assert_eq!(back.rows, want, "restored exactly");
    // A truncated piece (a store that wrote part of it), a piece renamed to another problem's
    // name, and a stray file: the first two skipped by name, the third ignored.
    let piece = |i: usize| {
        start_dataset::pieces::piece_path(unit, &rows[i].problem_id, rows[i].sample_index)
    };
    let whole = loc.get(&piece(0)).await.unwrap();
    loc.put(&piece(0), whole[..whole.len() / 2].to_vec())
        .await
        .unwrap();
    let other = loc.get(&piece(1)).await.unwrap();
    loc.put(&piece(3), other.to_vec()).await.unwrap();
    loc.put(
        &format!("{}/notes.txt", start_dataset::pieces::unit_dir(unit)),
        b"x".to_vec(),
    )
    .await
    .unwrap();
    let back = start_dataset::pieces::restore(&loc, unit).await.unwrap();
    assert_eq!(back.rows.len(), 3, "{:?}", back.skipped);
    assert_eq!(back.skipped.len(), 2, "{:?}", back.skipped);
    assert!(
        back.skipped.iter().any(|s| s.starts_with(&piece(0))),
        "{:?}",
        back.skipped
    );
    assert!(
        back.skipped
            .iter()
            .any(|s| s.starts_with(&piece(3)) && s.contains("another name")),
        "{:?}",
        back.skipped
    );
    assert_eq!(start_dataset::pieces::clear(&loc, unit).await.unwrap(), 6);
    assert!(start_dataset::pieces::restore(&loc, unit)
        .await
        .unwrap()
        .rows
        .is_empty());
    assert_eq!(
        start_dataset::pieces::restore(&loc, "job-a.u00004")
            .await
            .unwrap()
            .rows,
        [trajectory(9)]
    );
}
