"""The loop's measured effect: base, START-0 and START on the held-out split.

Reads the evaluation datasets the loop wrote (`eval/<model>-<setting>/`, each a start dataset)
with pyarrow and prints, per model and setting (without hints, with hints): trajectories, the
share that call a tool, accuracy, tool calls per trajectory and completion tokens; writes
`table.md`, `table.json` and `effect.svg` (grouped bars, the report's colours) beside them.

    table.py OUT_DIR
"""
import glob
import json
import os
import sys

import pyarrow.parquet as pq

MODELS = ["base", "start-0", "start"]
SETTINGS = [("plain", "without hints"), ("hints", "with hints")]
COLOURS = {"base": "#8a8f98", "start-0": "#3b6fb6", "start": "#3c9a5f"}


def figures(dataset):
    rows = []
    for path in sorted(glob.glob(os.path.join(dataset, "data", "*.parquet"))):
        rows += pq.read_table(path, columns=["correct", "tool_calls", "completion_tokens"]).to_pylist()
    n = len(rows)
    if n == 0:
        return None
    return {
        "trajectories": n,
        "tool_share": sum(len(r["tool_calls"]) > 0 for r in rows) / n,
        "accuracy": sum(r["correct"] is True for r in rows) / n,
        "tool_calls": sum(len(r["tool_calls"]) for r in rows) / n,
        "tokens": sum(r["completion_tokens"] for r in rows) / n,
    }


def svg(table):
    """Grouped bars: tool-call share and accuracy per model, without and with hints."""
    metrics = [("tool_share", "calls a tool"), ("accuracy", "accuracy")]
    groups = [(m, s, label) for m in ("tool_share", "accuracy") for s, label in SETTINGS]
    w, h, left, bottom, top = 640, 280, 48, 54, 30
    gw = (w - left - 10) / len(groups)
    bw = gw / (len(MODELS) + 1)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="DejaVu Sans, sans-serif" font-size="11">',
           f'<line x1="{left}" y1="{h - bottom}" x2="{w - 10}" y2="{h - bottom}" stroke="#111"/>']
    for t in (0, 0.5, 1):
        y = h - bottom - t * (h - bottom - top)
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{int(t * 100)}%</text>')
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{w - 10}" y2="{y:.1f}" stroke="#ddd"/>')
    for gi, (metric, setting, label) in enumerate(groups):
        x0 = left + gi * gw + bw / 2
        for mi, model in enumerate(MODELS):
            f = table.get(model, {}).get(setting)
            v = f[metric] if f else 0
            bh = v * (h - bottom - top)
            out.append(f'<rect x="{x0 + mi * bw:.1f}" y="{h - bottom - bh:.1f}" width="{bw * 0.9:.1f}" height="{bh:.1f}" '
                       f'fill="{COLOURS[model]}"><title>{model}, {label}: {v:.0%}</title></rect>')
        name = dict(metrics)[metric]
        out.append(f'<text x="{left + gi * gw + gw / 2:.1f}" y="{h - bottom + 16}" text-anchor="middle">{name}</text>')
        out.append(f'<text x="{left + gi * gw + gw / 2:.1f}" y="{h - bottom + 30}" text-anchor="middle" fill="#555">{label}</text>')
    for mi, model in enumerate(MODELS):
        out.append(f'<rect x="{left + mi * 90}" y="6" width="10" height="10" fill="{COLOURS[model]}"/>'
                   f'<text x="{left + mi * 90 + 14}" y="15">{model}</text>')
    out.append("</svg>")
    return "\n".join(out)


def main():
    out = sys.argv[1]
    table = {m: {s: figures(os.path.join(out, "eval", f"{m}-{s}")) for s, _ in SETTINGS} for m in MODELS}
    lines = ["| model | setting | trajectories | call a tool | accuracy | tool calls / traj | tokens / traj |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for m in MODELS:
        for s, label in SETTINGS:
            f = table[m][s]
            if f is None:
                lines.append(f"| {m} | {label} | not run | | | | |")
                continue
            lines.append(f"| {m} | {label} | {f['trajectories']} | {f['tool_share']:.0%} | {f['accuracy']:.0%} | "
                         f"{f['tool_calls']:.2f} | {f['tokens']:.0f} |")
    text = "\n".join(lines)
    print(text)
    with open(os.path.join(out, "table.md"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(out, "table.json"), "w") as f:
        json.dump(table, f, indent=1)
    with open(os.path.join(out, "effect.svg"), "w") as f:
        f.write(svg(table))


if __name__ == "__main__":
    main()
