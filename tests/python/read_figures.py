"""Reads the figures and tools of a start dataset with pyarrow, DuckDB and Hugging Face
`datasets`, as a dataset builder would, and prints them as JSON (one object per row) for the
Rust test to check. Used by worker/tests/integration/data.rs.

    python3 read_figures.py DATASET
"""

import hashlib
import json
import os
import sys
import warnings

warnings.filterwarnings("ignore")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")

import duckdb  # noqa: E402
import pyarrow.dataset as ds  # noqa: E402


def main():
    root = sys.argv[1]
    t = ds.dataset(os.path.join(root, "data"), format="parquet").to_table()
    png_type = t.schema.field("figures").type.value_type.field("png").type
    rows = []
    for r in t.to_pylist():
        rows.append({
            "problem_id": r["problem_id"],
            "tools": r["tools"],
            "tool_calls": [c["tool"] for c in r["tool_calls"]],
            "figures": [{
                "segment": f["segment"], "index": f["index"], "width": f["width"],
                "height": f["height"], "size": f["size"], "bytes": len(f["png"]),
                "magic": f["png"][:8].hex(), "sha256": hashlib.sha256(f["png"]).hexdigest(),
                "segment_kind": r["segments"][f["segment"]]["kind"],
            } for f in r["figures"]],
        })
    glob = os.path.join(root, "data", "*.parquet").replace("'", "''")
    duck = duckdb.sql(
        f"select count(*), sum(octet_length(f.png)) from "
        f"(select unnest(figures) as f from read_parquet('{glob}'))").fetchall()[0]
    import datasets
    hf = datasets.load_dataset("parquet", data_files=os.path.join(root, "data", "*.parquet"),
                               split="train")
    hf_pngs = [f["png"] for r in hf for f in r["figures"]]
    print(json.dumps({"png_type": str(png_type), "rows": rows,
                      "duckdb_figures": duck[0], "duckdb_png_bytes": duck[1],
                      "hf_figures": len(hf_pngs),
                      "hf_png_sha256": [hashlib.sha256(p).hexdigest() for p in hf_pngs]}))


if __name__ == "__main__":
    main()
