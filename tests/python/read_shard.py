"""Reads a start dataset with pyarrow and DuckDB and checks every value against the expected
rows (the JSON the Rust writer was given). Used by tests/tests/shards.rs; exits non-zero with a
message naming the first difference."""

import datetime
import hashlib
import json
import os
import struct
import sys

import duckdb
import pyarrow.parquet as pq


def fail(msg):
    print(f"read_shard.py: {msg}", file=sys.stderr)
    sys.exit(1)


def as_float32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def same(path, got, want):
    """Compares a value read by pyarrow with the JSON the writer was given."""
    if isinstance(want, float) or isinstance(got, float):
        # Exact: a float64 column holds the very value written; a float32 column the value
        # rounded to float32 (what the writer stored), so `want` is rounded the same way.
        if want is None or got is None or (got != want and got != as_float32(want)):
            fail(f"{path}: got {got!r}, want {want!r}")
    elif isinstance(want, dict):
        if set(got) != set(want):
            fail(f"{path}: keys {sorted(got)} != {sorted(want)}")
        for k in want:
            same(f"{path}.{k}", got[k], want[k])
    elif isinstance(want, list):
        if len(got) != len(want):
            fail(f"{path}: {len(got)} items, want {len(want)}")
        for i, (g, w) in enumerate(zip(got, want)):
            same(f"{path}[{i}]", g, w)
    elif isinstance(got, datetime.datetime):
        want_dt = datetime.datetime.fromisoformat(want.replace("Z", "+00:00"))
        if got != want_dt or got.utcoffset() != datetime.timedelta(0):
            fail(f"{path}: got {got!r}, want {want_dt!r}")
    elif got != want:
        fail(f"{path}: got {got!r}, want {want!r}")


def main():
    root, expected_path = sys.argv[1], sys.argv[2]
    with open(expected_path, encoding="utf-8") as f:
        expected = json.load(f)
    with open(os.path.join(root, "_manifest.json"), encoding="utf-8") as f:
        manifest = json.load(f)
    if manifest["format"] != "start.dataset":
        fail(f"manifest format is {manifest['format']!r}")

    rows = []
    paths = []
    for shard in manifest["shards"]:
        path = os.path.join(root, shard["path"])
        paths.append(path)
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        if digest != shard["sha256"] or os.path.getsize(path) != shard["bytes"]:
            fail(f"{path}: sha256 or size differs from the manifest")
        pf = pq.ParquetFile(path)
        meta = pf.metadata
        if meta.metadata[b"start.schema_version"] != str(shard["schema_version"]).encode():
            fail(f"{path}: schema version metadata missing")
        codecs = {meta.row_group(g).column(c).compression
                  for g in range(meta.num_row_groups) for c in range(meta.num_columns)}
        if codecs != {"ZSTD"}:
            fail(f"{path}: compression {codecs}, want ZSTD")
        table = pf.read()
        if table.num_rows != shard["rows"]:
            fail(f"{path}: {table.num_rows} rows, manifest says {shard['rows']}")
        rows.extend(table.to_pylist())

    if len(rows) != len(expected):
        fail(f"pyarrow read {len(rows)} rows, want {len(expected)}")
    for i, (got, want) in enumerate(zip(rows, expected)):
        same(f"row {i}", got, want)

    con = duckdb.connect()
    files = "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"
    n, tokens, tool_calls, correct, first = con.execute(
        f"""select count(*), sum(completion_tokens), sum(len(tool_calls)),
                   count(*) filter (where correct),
                   min(created_at)
            from read_parquet({files})"""
    ).fetchone()
    checks = {
        "rows": (n, len(expected)),
        "completion_tokens": (tokens, sum(r["completion_tokens"] for r in expected)),
        "tool_calls": (tool_calls, sum(len(r["tool_calls"]) for r in expected)),
        "correct": (correct, sum(1 for r in expected if r["correct"])),
    }
    for name, (got, want) in checks.items():
        if got != want:
            fail(f"duckdb {name}: got {got}, want {want}")
    earliest = min(datetime.datetime.fromisoformat(r["created_at"].replace("Z", "+00:00"))
                   for r in expected)
    if first != earliest:
        fail(f"duckdb min(created_at): got {first!r}, want {earliest!r}")
    kinds = con.execute(
        f"select s.kind, count(*) from read_parquet({files}), unnest(segments) as t(s) "
        "group by 1 order by 1").fetchall()
    want_kinds = {}
    for r in expected:
        for s in r["segments"]:
            want_kinds[s["kind"]] = want_kinds.get(s["kind"], 0) + 1
    if dict(kinds) != want_kinds:
        fail(f"duckdb segment kinds: got {dict(kinds)}, want {want_kinds}")
    print(f"pyarrow: {len(rows)} rows equal; duckdb: aggregates equal")


if __name__ == "__main__":
    main()
