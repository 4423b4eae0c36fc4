#!/usr/bin/env python3
"""start's importers and graders on the datasets' real release files (run by
scripts/check-real-releases; not a test, not in CI: it needs the files, which are other people's
and are not kept in this repository).

Each release below is named by repository, commit and path. It is read from a cache directory;
what is missing there is taken from a local clone (START_RELEASES_GIT: a directory of clones or
bare repositories named `owner+name` or `owner/name`, with or without a `/repo` inside) or, as
a last resort, downloaded from GitHub at the pinned commit.

Then, with the `startctl` given:
  1. every release is imported with its format; the table gives rows read, imported, skipped
     by reason, invalid, and the exit code;
  2. the APPS reference solutions are graded against their own problems (code grader, sandbox);
  3. MATH's 5,000 test problems are graded with their own solutions as the responses;
  4. Math-Verify's own regression tables (its tests' gold/pred/expected rows, read from the
     Python source with `ast`) are graded by start and by Math-Verify itself with the tests'
     default helper (LaTeX + expression targets, boxed priority 0, 6 digits, strict).

    python3 scripts/real_releases.py --startctl target/release/startctl [--cache DIR] [--out DIR]
"""

import argparse
import ast
import io
import json
import logging
import os
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from collections import Counter
from pathlib import Path

# (name, repository, commit, path in the repository, import format or None, directory?)
RELEASES = [
    ("AIME 1983-2024 CSV", "nouop/aidltest", "1d7fcf5570e8b8f61954fc8fa0b22db44ebc2abb",
     "data/AIME_Dataset_1983_2024.csv", "aime", False),
    ("AIME derived CSV (id, problem, answer)", "tonghuikang/grpo_aimo2", "c766ab5b78e0a0eb029569ad1cc6a7be9a8ec464",
     "AIME_Dataset_1983_2024.csv", "aime", False),
    ("AIME 2024, AI-MO style", "QwenLM/Qwen2.5-Math", "a45202bd16f1ec06f433442dc1152d0074773465",
     "evaluation/data/aime24/test.jsonl", "aime", False),
    ("AMC 2023, AI-MO style, as MATH", "QwenLM/Qwen2.5-Math", "a45202bd16f1ec06f433442dc1152d0074773465",
     "evaluation/data/amc23/test.jsonl", "math", False),
    ("GPQA diamond, original CSV", "ShengranHu/ADAS", "2702bee8fefda42255efc5be9f60e3bd3db96ae4",
     "dataset/gpqa_diamond.csv", "gpqa-csv", False),
    ("HumanEval", "openai/human-eval", "6d43fb980f9fee3c892a914eda09951f772ad10d",
     "data/HumanEval.jsonl.gz", "humaneval", False),
    ("APPS, original release folders", "salesforce/CodeRL", "ec3c526a07e44f56f702f354cbad11187bdf25cc",
     "data/APPS/train", "apps", True),
    ("MATH test, original release", "aiwaves-cn/agents", "e8c4e3c2d19739d3dff59e577d1c97090cc15f59",
     "src/agents/datasets/data/math/test", "math", True),
    ("MATH test through the Numina rules", "aiwaves-cn/agents", "e8c4e3c2d19739d3dff59e577d1c97090cc15f59",
     "src/agents/datasets/data/math/test", "numina", True),
    ("Math-Verify tests", "huggingface/Math-Verify", "5d148cfaaf99214c2e4ffb4bc497ab042c592a7a",
     "tests", None, True),
]

MATH_VERIFY_TABLES = ["test_all.py", "test_numina_cases.py", "test_open_thoughts.py", "test_boxed.py"]


def clone_of(repo):
    root = os.environ.get("START_RELEASES_GIT")
    if not root:
        return None
    owner, name = repo.split("/")
    for candidate in [Path(root) / f"{owner}+{name}", Path(root) / owner / name]:
        for git_dir in [candidate / "repo", candidate / ".git", candidate]:
            if (git_dir / "HEAD").exists() or (git_dir / "objects").is_dir():
                return git_dir
    return None


def fetch(cache, repo, commit, path, is_dir):
    """The release's path in the cache, fetched first when missing."""
    dest = cache / repo.replace("/", "+") / commit / path
    if dest.exists():
        return dest
    git_dir = clone_of(repo)
    if git_dir is not None:
        if is_dir:
            out = subprocess.run(["git", "--git-dir", str(git_dir), "archive", commit, path],
                                 check=True, capture_output=True).stdout
            with tarfile.open(fileobj=io.BytesIO(out)) as tar:
                tar.extractall(cache / repo.replace("/", "+") / commit, filter="data")
        else:
            dest.parent.mkdir(parents=True, exist_ok=True)
            out = subprocess.run(["git", "--git-dir", str(git_dir), "show", f"{commit}:{path}"],
                                 check=True, capture_output=True).stdout
            dest.write_bytes(out)
        return dest
    if is_dir:
        url = f"https://codeload.github.com/{repo}/tar.gz/{commit}"
        print(f"  downloading {url} (the whole repository, for {path})", file=sys.stderr)
        data = urllib.request.urlopen(url, timeout=600).read()
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            top = tar.getmembers()[0].name.split("/")[0]
            members = [m for m in tar.getmembers() if m.name.startswith(f"{top}/{path}/")]
            for m in members:
                m.name = m.name[len(top) + 1:]
            tar.extractall(cache / repo.replace("/", "+") / commit, members=members, filter="data")
    else:
        url = f"https://raw.githubusercontent.com/{repo}/{commit}/{path}"
        print(f"  downloading {url}", file=sys.stderr)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(urllib.request.urlopen(url, timeout=600).read())
    return dest


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def import_release(startctl, fmt, path, out_dir, tag, extra=()):
    out, report = out_dir / f"{tag}.jsonl", out_dir / f"{tag}.report.jsonl"
    p = run([startctl, "import", "--format", fmt, str(path), "-o", str(out), "--report", str(report), *extra])
    summary = next((l for l in p.stderr.splitlines() if l.startswith("imported ")), p.stderr.strip()[-300:])
    reasons = Counter()
    for line in open(report) if report.exists() else []:
        r = json.loads(line)
        reasons[r["reason"] if r["reason"] != "invalid" else
                 "invalid: " + ", ".join(sorted({e["field"] for e in r["errors"]}))] += 1
    rows = [json.loads(l) for l in open(out)] if out.exists() else []
    return {"exit": p.returncode, "summary": summary, "reasons": reasons, "rows": rows, "out": out}


def grade(startctl, problems, responses, out_dir, tag):
    resp = out_dir / f"{tag}.responses.jsonl"
    with open(resp, "w") as f:
        for r in responses:
            f.write(json.dumps(r) + "\n")
    verdicts = out_dir / f"{tag}.verdicts.jsonl"
    p = run([startctl, "grade", "--problems", str(problems), "--responses", str(resp),
             "--out", str(verdicts), "--concurrency", "8"])
    if not verdicts.exists():
        sys.exit(f"startctl grade failed for {tag}: {p.stderr[-2000:]}")
    return [json.loads(l) for l in open(verdicts)]


def math_verify_rows(tests_dir):
    """The gold/pred/expected rows of Math-Verify's parametrized tests, with their extra
    parameters."""
    rows = []
    for name in MATH_VERIFY_TABLES:
        tree = ast.parse((tests_dir / name).read_text())
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef):
                continue
            for dec in fn.decorator_list:
                if not (isinstance(dec, ast.Call) and getattr(dec.func, "attr", "") == "parametrize"):
                    continue
                names = ast.literal_eval(dec.args[0])
                names = [n.strip() for n in (names.split(",") if isinstance(names, str) else names)]
                if names[:3] != ["gold", "pred", "expected"]:
                    continue
                for i, elt in enumerate(dec.args[1].elts):
                    try:
                        values = ast.literal_eval(elt)
                    except ValueError:
                        continue  # a row built at run time (an f-string)
                    row = dict(zip(names, values))
                    row["test"] = f"{name}::{fn.name}[{i}]"
                    rows.append(row)
    return rows


def math_verify_default(gold, pred):
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify
    targets = [LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig()]
    try:
        return bool(verify(parse(gold, targets), parse(pred, targets), float_rounding=6, strict=True))
    except Exception:
        return False


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--startctl", required=True)
    ap.add_argument("--cache", default=os.path.expanduser("~/.cache/start-releases"))
    ap.add_argument("--out", default=None, help="keep the imports, reports and verdicts here")
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    cache = Path(args.cache)
    out_dir = Path(args.out or tempfile.mkdtemp(prefix="start-releases-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, repo, commit, path, fmt, is_dir in RELEASES:
        paths[name] = fetch(cache, repo, commit, path, is_dir)

    print("## Imports\n")
    print("| release (repository @ commit, path) | exit | read | imported | skipped, by reason | invalid |")
    print("| --- | --- | --- | --- | --- | --- |")
    imports = {}
    for k, (name, repo, commit, path, fmt, is_dir) in enumerate(RELEASES):
        if fmt is None:
            continue
        res = import_release(args.startctl, fmt, paths[name], out_dir, f"import-{k}")
        imports[name] = res
        words = res["summary"].split()
        read = words[3] if len(words) > 3 and words[0] == "imported" else "?"
        invalid = sum(v for r, v in res["reasons"].items() if r.startswith("invalid"))
        skipped = "; ".join(f"{r}: {v}" for r, v in sorted(res["reasons"].items()) if not r.startswith("invalid")) or "none"
        invalid_text = str(invalid) + ("" if not invalid else " (" + "; ".join(
            f"{r[9:]}: {v}" for r, v in res["reasons"].items() if r.startswith("invalid")) + ")")
        print(f"| {name} (`{repo}` @ {commit[:7]}, `{path}`) | {res['exit']} | {read} | {len(res['rows'])} | {skipped} | {invalid_text} |")
    aime24 = imports["AIME 2024, AI-MO style"]
    cut = import_release(args.startctl, "aime", paths["AIME 2024, AI-MO style"], out_dir, "aime24-before",
                         ["--before", "2025-01-01"])
    print(f"\nAIME 2024 with `--before 2025-01-01`: {cut['summary']}; ids "
          f"{', '.join(r['id'] for r in aime24['rows'][:3])}, …")

    print("\n## Graders on the releases' own solutions\n")
    print("| what | graded | correct | wrong | unknown |")
    print("| --- | --- | --- | --- | --- |")
    # APPS: every reference solution of every imported problem, from its folder.
    apps = imports["APPS, original release folders"]
    responses = []
    for row in apps["rows"]:
        folder = paths["APPS, original release folders"] / row["id"].removeprefix("apps-")
        sols = json.loads((folder / "solutions.json").read_text()) if (folder / "solutions.json").exists() else []
        for s in sols:
            responses.append({"problem_id": row["id"], "response": f"```python\n{s}\n```"})
    verdicts = grade(args.startctl, apps["out"], responses, out_dir, "apps")
    by = Counter((r["problem_id"], r["correct"]) for r in verdicts)
    for row in apps["rows"]:
        ok, bad, unk = (by[(row["id"], True)], by[(row["id"], False)], by[(row["id"], None)])
        print(f"| APPS `{row['id']}` reference solutions | {ok + bad + unk} | {ok} | {bad} | {unk} |")
    # MATH: each test problem with its own solution as the response.
    math = imports["MATH test, original release"]
    solutions = [{"problem_id": r["id"], "response": r["solution"]} for r in math["rows"]]
    verdicts = grade(args.startctl, math["out"], solutions, out_dir, "math")
    c = Counter(v["correct"] for v in verdicts)
    print(f"| MATH test problems, own solution as the response | {len(verdicts)} | {c[True]} | {c[False]} | {c[None]} |")
    wrong = [v for v in verdicts if v["correct"] is not True]
    for v in wrong[:10]:
        print(f"|   not correct: `{v['problem_id']}` | | | {json.dumps(v.get('final_answer'))} | |")

    # Math-Verify's own tables.
    rows = math_verify_rows(paths["Math-Verify tests"])
    problems = out_dir / "mv.problems.jsonl"
    with open(problems, "w") as f:
        for i, r in enumerate(rows):
            f.write(json.dumps({"id": f"mv-{i}", "source": "math-verify", "kind": "math",
                                "question": r["test"], "answer": r["gold"]}) + "\n")
    verdicts = grade(args.startctl, problems, [{"problem_id": f"mv-{i}", "response": r["pred"]}
                                               for i, r in enumerate(rows)], out_dir, "mv")
    start_agree = sum(1 for r, v in zip(rows, verdicts) if v["correct"] is not None and v["correct"] == bool(r["expected"]))
    mv_agree = sum(1 for r in rows if math_verify_default(r["gold"], r["pred"]) == bool(r["expected"]))
    n = len(rows)
    print(f"\n## Math-Verify's own tables ({', '.join(MATH_VERIFY_TABLES)}: {n} gold/pred/expected rows)\n")
    print("| grader | agrees with the table |")
    print("| --- | --- |")
    print(f"| start (`startctl grade`, sympy fallback in the sandbox) | {start_agree} ({100 * start_agree / n:.1f}%) |")
    print(f"| Math-Verify 0.9, the tests' default helper | {mv_agree} ({100 * mv_agree / n:.1f}%) |")
    print("\nRows start does not agree on:\n")
    for r, v in zip(rows, verdicts):
        if v["correct"] is None or v["correct"] != bool(r["expected"]):
            extra = {k: r[k] for k in r if k not in ("gold", "pred", "expected", "test")}
            print(f"- `{r['test']}` expected {r['expected']}, start {v['correct']} {extra or ''}")
    print(f"\n(imports, reports and verdicts kept in {out_dir})")


if __name__ == "__main__":
    main()
