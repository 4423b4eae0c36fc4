"""Reads a start dataset with four readers that never heard of start, each the way its users
would, and checks that each sees exactly the committed rows, once: no staged upload, no
orphan, no manifest taken for data. Used by tests/tests/shards.rs.

    python3 outside_readers.py DATASET EXPECTED_ROWS
"""

import os
import sys
import warnings

warnings.filterwarnings("ignore")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")


def keys(rows):
    return sorted(zip(rows["problem_id"], rows["sample_index"]))


def main():
    root, want = sys.argv[1], int(sys.argv[2])
    data = os.path.join(root, "data")
    seen = {}

    import pyarrow.dataset as ds
    t = ds.dataset(data, format="parquet").to_table(columns=["problem_id", "sample_index"])
    seen["pyarrow.dataset(DATASET/data)"] = keys(t.to_pydict())
    # The dataset root too, skipping what is not Parquet (README.md is the Hub's card).
    t = ds.dataset(root, format="parquet", exclude_invalid_files=True).to_table(
        columns=["problem_id", "sample_index"])
    seen["pyarrow.dataset(DATASET, exclude_invalid_files)"] = keys(t.to_pydict())

    import duckdb
    glob = os.path.join(root, "**", "*.parquet").replace("'", "''")
    r = duckdb.sql(f"select problem_id, sample_index from read_parquet('{glob}')").fetchall()
    seen["duckdb read_parquet(DATASET/**/*.parquet)"] = sorted(r)

    import polars as pl
    df = pl.scan_parquet(os.path.join(root, "**", "*.parquet")).select(
        ["problem_id", "sample_index"]).collect()
    seen["polars.scan_parquet(DATASET/**/*.parquet)"] = keys(df.to_dict(as_series=False))
    df = pl.scan_parquet(data).select(["problem_id", "sample_index"]).collect()
    seen["polars.scan_parquet(DATASET/data)"] = keys(df.to_dict(as_series=False))

    import datasets
    datasets.disable_progress_bars()
    cache = os.path.join(root, "..", "hf-cache")
    d = datasets.load_dataset(root, cache_dir=cache)["train"]
    seen["datasets.load_dataset(DATASET) (card configs)"] = keys(d.to_dict())
    d = datasets.load_dataset("parquet", data_dir=data, cache_dir=cache)["train"]
    seen["datasets.load_dataset('parquet', data_dir=DATASET/data)"] = keys(d.to_dict())

    reference = None
    bad = []
    for name, rows in seen.items():
        if len(rows) != want or len(set(rows)) != want:
            bad.append(f"{name}: {len(rows)} rows ({len(set(rows))} distinct), want {want}")
        if reference is None:
            reference = rows
        elif rows != reference:
            bad.append(f"{name}: other rows than {next(iter(seen))}")
        print(f"{name}: {len(rows)} rows")
    if bad:
        print("outside_readers.py: " + "; ".join(bad), file=sys.stderr)
        sys.exit(1)
    print(f"all {len(seen)} readers: exactly {want} committed rows")


if __name__ == "__main__":
    main()
