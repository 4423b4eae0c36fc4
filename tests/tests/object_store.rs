//! The dataset store on a real S3-compatible server on loopback (moto, started by the test):
//! the same commit rules as on a local directory, under the failures object storage brings:
//! two committers racing for the manifest, and a writer killed mid-upload.

use futures_util::future::join_all;
use object_store::{ObjectStore, PutPayload};
use start_dataset::{
    layout, Dataset, DatasetLocation, Manifest, ShardOptions, ShardWriter, StoreRoot,
};
use start_tests::s3::S3Server;
use start_tests::trajectory;
use std::sync::OnceLock;

/// One server for this test binary; its environment is set once for the clients built here.
fn server() -> &'static S3Server {
    static SERVER: OnceLock<S3Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let s = S3Server::start("start-test");
        s.export_env();
        s
    })
}

fn dataset(prefix: &str) -> DatasetLocation {
    DatasetLocation::open(&server().url(prefix)).unwrap()
}

async fn shard(
    loc: &DatasetLocation,
    id: &str,
    first: u32,
    rows: u32,
) -> start_dataset::ShardEntry {
    let mut w = ShardWriter::create(id, &ShardOptions::default()).unwrap();
    w.write(&(first..first + rows).map(trajectory).collect::<Vec<_>>())
        .unwrap();
    w.finish().unwrap().stage(loc).await.unwrap()
}

async fn rows_of(loc: &DatasetLocation) -> Vec<start_schemas::trajectory::Trajectory> {
    let ds = Dataset::open(loc.clone()).await.unwrap();
    let mut out = Vec::new();
    for s in &ds.manifest.shards {
        ds.verify(s).await.unwrap();
        for b in ds.read_shard(s, 16).await.unwrap() {
            out.extend(b.unwrap());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_stage_and_commit_on_s3_in_the_same_layout() {
    let loc = dataset("round-trip");
    assert_eq!(loc.to_string(), "s3://start-test/round-trip");
    let a = shard(&loc, "unit-a", 0, 5).await;
    let b = shard(&loc, "unit-b", 5, 3).await;
    assert_eq!(
        loc.list("").await.unwrap(),
        [layout::staged_path("unit-a"), layout::staged_path("unit-b")]
    );
    let done = start_dataset::commit(&loc, vec![a.clone(), b], None)
        .await
        .unwrap();
    assert_eq!(done.added, 2);
    assert_eq!(
        loc.list("").await.unwrap(),
        [
            "README.md",
            "_manifest.json",
            "data/unit-a.parquet",
            "data/unit-b.parquet"
        ]
    );
    assert_eq!(
        rows_of(&loc).await,
        (0..8).map(trajectory).collect::<Vec<_>>()
    );
    // Committing again is a no-op; a StoreRoot resolves job paths under its prefix.
    assert_eq!(
        start_dataset::commit(&loc, vec![a], None)
            .await
            .unwrap()
            .added,
        0
    );
    let root = StoreRoot::parse(&server().url("")).unwrap();
    let same = root.dataset("round-trip").unwrap();
    assert_eq!(Manifest::load(&same).await.unwrap().unwrap().rows(), 8);
    assert!(root.dataset("../escape").is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_coordinators_racing_for_the_manifest_lose_and_double_nothing() {
    // Two committers with their own clients (two coordinators), each committing 12 shards one
    // commit at a time, and both also committing 4 shards they share (a duplicate report).
    let (one, two) = (dataset("race"), dataset("race"));
    let mut shared = Vec::new();
    for k in 0..4 {
        shared.push(shard(&one, &format!("shared-{k}"), 100 + k, 1).await);
    }
    let mut mine = [Vec::new(), Vec::new()];
    for (c, loc) in [&one, &two].into_iter().enumerate() {
        for k in 0..12u32 {
            mine[c].push(shard(loc, &format!("c{c}-{k:02}"), c as u32 * 50 + k, 1).await);
        }
    }
    let run = |loc: DatasetLocation,
               own: Vec<start_dataset::ShardEntry>,
               shared: Vec<start_dataset::ShardEntry>| async move {
        let mut added = 0;
        for (i, e) in own.into_iter().enumerate() {
            let mut batch = vec![e];
            if i < shared.len() {
                batch.push(shared[i].clone());
            }
            added += start_dataset::commit(&loc, batch, None)
                .await
                .unwrap()
                .added;
        }
        added
    };
    let [m0, m1] = mine;
    let added = join_all([
        tokio::spawn(run(one.clone(), m0, shared.clone())),
        tokio::spawn(run(two.clone(), m1, shared.clone())),
    ])
    .await;
    let added: usize = added.into_iter().map(|r| r.unwrap()).sum();
    assert_eq!(added, 28, "every shard added once, by one of the two");
    let manifest = Manifest::load(&one).await.unwrap().unwrap();
    let mut ids: Vec<_> = manifest.shards.iter().map(|s| s.shard_id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!((manifest.shards.len(), ids.len()), (28, 28));
    assert_eq!(one.list(layout::DATA_DIR).await.unwrap().len(), 28);
    assert!(one.list(layout::STAGING_DIR).await.unwrap().is_empty());
    assert_eq!(rows_of(&one).await.len(), 28);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_killed_mid_upload_leaves_nothing_a_reader_sees() {
    let loc = dataset("killed");
    let kept = shard(&loc, "unit-kept", 0, 2).await;
    start_dataset::commit(&loc, vec![kept], None).await.unwrap();
    // A big shard's multipart upload, cut off after its first part (what a worker killed
    // mid-upload leaves: parts, no completed object) ...
    let staged = loc.path(&layout::staged_path("unit-killed"));
    let mut upload = loc.store().put_multipart(&staged).await.unwrap();
    upload
        .put_part(PutPayload::from(vec![7u8; 5 << 20]))
        .await
        .unwrap();
    drop(upload);
    // ... and a single PUT cut off mid-body (the connection dies; S3 stores nothing).
    assert!(
        loc.store().head(&staged).await.is_err(),
        "no object from parts alone"
    );
    // Neither is visible: not in the listing, not in the dataset, and its commit is refused.
    assert_eq!(
        loc.list("").await.unwrap(),
        ["README.md", "_manifest.json", "data/unit-kept.parquet"]
    );
    let mut ghost = Manifest::load(&loc).await.unwrap().unwrap().shards[0].clone();
    ghost.shard_id = "unit-killed".into();
    ghost.path = layout::data_path("unit-killed");
    let err = start_dataset::commit(&loc, vec![ghost], None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("is not staged"), "{err}");
    assert_eq!(rows_of(&loc).await.len(), 2);
    // The unit's next attempt stages and commits as usual.
    let retry = shard(&loc, "unit-killed-retry", 2, 2).await;
    start_dataset::commit(&loc, vec![retry], None)
        .await
        .unwrap();
    assert_eq!(rows_of(&loc).await.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_problems_file_in_the_bucket_is_read_whole_and_a_missing_one_named() {
    // What the coordinator does with a job's problems_uri when the store root is a bucket.
    let root = StoreRoot::parse(&server().url("inputs")).unwrap();
    let text = b"{\"id\": \"p1\", \"kind\": \"math\", \"question\": \"1+1?\", \"answer\": \"2\"}\n";
    let loc = root.dataset("sets").unwrap();
    loc.store()
        .put(&loc.path("aime.jsonl"), PutPayload::from(text.to_vec()))
        .await
        .unwrap();
    assert_eq!(root.read("sets/aime.jsonl").await.unwrap().as_ref(), text);
    let err = root
        .read("sets/missing.jsonl")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("s3://start-test/inputs/sets/missing.jsonl"),
        "{err}"
    );
}
