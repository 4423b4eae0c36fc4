#!/usr/bin/env python3
"""Gold/prediction pairs for differential testing of start's math grader against Math-Verify.

Gold answers come from real sets: MATH-500's answers (grader/tests/fixtures/math500_answers.jsonl),
the bundled example problems, and the grader's labelled table. Each gold is rendered the ways
models write answers (boxed in a sentence, "The final answer is", "Answer:", every math delimiter,
across line breaks, \\dfrac, \\left(...\\right), thousands separators, units, currency, percent,
decimals, reordered sets and sums) and mutated the ways answers go wrong (off by one, off by 1e-3,
a set missing an element, an interval with the wrong end, swapped tuples, flipped signs).

Deterministic for a given --seed. Splits: `dev` (MATH-500 answers at even positions, the bundled
examples and the labelled table) is what the grader was developed against; `heldout` (MATH-500
answers at odd positions, another seed) is only for the benchmark.

    python3 scripts/math_pairs.py --split dev --seed 1 > pairs.jsonl

Each line: {"id", "gold", "response", "family", "intent"} where intent is what the rendering
means to say ("equal" or "different"); the verdict of record is Math-Verify's.
"""

import argparse
import json
import random
import re
import sys
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def golds(split):
    out = []
    for line in open(ROOT / "grader/tests/fixtures/math500_answers.jsonl"):
        row = json.loads(line)
        if (row["index"] % 2 == 0) == (split == "dev"):
            out.append(("math500", row["answer"]))
    if split == "dev":
        for line in open(ROOT / "examples/problems/math.jsonl"):
            out.append(("examples", json.loads(line)["answer"]))
    return out


def labelled():
    for line in open(ROOT / "grader/tests/fixtures/math_cases.jsonl"):
        case = json.loads(line)
        yield case["gold"], case["response"]


INT = re.compile(r"^-?\d+$")
DEC = re.compile(r"^-?\d*\.\d+$")
PERCENT = re.compile(r"^(\d+(?:\.\d+)?)\\%$")
FRAC = re.compile(r"^(-?)\\[dt]?frac\{(\d+)\}\{(\d+)\}$")
SQRT = re.compile(r"\\sqrt\{(\d+)\}")


def as_fraction(g):
    if INT.match(g):
        return Fraction(int(g))
    if DEC.match(g):
        return Fraction(g)
    m = FRAC.match(g)
    if m:
        f = Fraction(int(m.group(2)), int(m.group(3)))
        return -f if m.group(1) else f
    return None


def thousands(n):
    return f"{n:,}"


def sentences(rng, latex):
    """Ways a model ends its response with `latex` as the answer."""
    return [
        ("boxed", f"Putting it together, the result is $\\boxed{{{latex}}}$."),
        ("boxed_bare", f"\\boxed{{{latex}}}"),
        ("boxed_split", f"So we get\n\\[\n\\boxed{{\n{latex}\n}}\n\\]"),
        ("final_answer", f"Therefore, the final answer is ${latex}$."),
        ("final_answer_boxed", f"The final answer is $\\boxed{{{latex}}}$. I hope it is correct."),
        ("answer_colon", f"After simplifying, we are done.\nAnswer: ${latex}$"),
        ("display_dollars", f"Hence\n$$\n{latex}\n$$"),
        ("display_brackets", f"Hence the answer is\n\\[ {latex} \\]"),
        ("inline_parens", f"The answer is \\({latex}\\)."),
        ("two_boxed", f"First I got $\\boxed{{0}}$, but that was a slip; correcting it gives $\\boxed{{{latex}}}$."),
    ]


def newer_sentences(latex):
    """Ways real outputs end that the first families did not render (their own draws, so that
    the earlier families' pairs, and the reviewed differences that name them, stay the same)."""
    return [
        # What a chat model leaves after its answer when the template's stop is missed.
        ("chat_tail", f"So the answer is $\\boxed{{{latex}}}$.<|im_end|>\n<|im_start|>user\nThanks"),
        # LaTeX escaped twice, as answers copied out of JSON or Python strings are.
        ("double_escaped", "Thus $\\boxed{" + re.sub(r"\\([A-Za-z])", r"\\\\\1", latex) + "}$."),
    ]


def equal_forms(rng, g):
    """Renderings of gold `g` that say the same answer."""
    forms = [("as_is", g)]
    f = as_fraction(g)
    if "\\frac" in g:
        forms.append(("dfrac", g.replace("\\frac", "\\dfrac")))
        forms.append(("tfrac", g.replace("\\frac", "\\tfrac")))
        short = re.sub(r"\\frac\{(\d)\}\{(\d)\}", r"\\frac\1\2", g)
        if short != g:
            forms.append(("frac_shorthand", short))
    if "(" in g and "\\left" not in g:
        forms.append(("left_right", g.replace("(", "\\left(").replace(")", "\\right)")))
    if "\\left" in g:
        forms.append(("no_left_right", g.replace("\\left", "").replace("\\right", "")))
    if SQRT.search(g):
        forms.append(("sqrt_unbraced", SQRT.sub(lambda m: "\\sqrt" + m.group(1) if len(m.group(1)) == 1 else m.group(0), g)))
    if f is not None and f.denominator == 1:
        n = int(f)
        if abs(n) >= 10000:
            forms.append(("thousands_comma", thousands(n)))
            forms.append(("thousands_braced", thousands(n).replace(",", "{,}")))
        forms.append(("var_equals", f"x = {n}"))
        forms.append(("units_text", f"{n}\\text{{ cm}}"))
        forms.append(("units_textnormal", f"{n}\\textnormal{{ miles}}"))
        forms.append(("currency", f"\\${n}"))
        forms.append(("trailing_zero", f"{n}.0"))
        if n >= 0:
            forms.append(("degrees", f"{n}^\\circ"))
    if f is not None and f.denominator != 1:
        forms.append(("decimal", f"{float(f):.6f}"))
        forms.append(("slash", f"{f.numerator}/{f.denominator}"))
        if abs(float(f)) < 1 and f.denominator in (2, 4, 5, 8, 10, 20, 25, 50, 100):
            forms.append(("leading_dot", str(float(f)).replace("0.", ".", 1)))
    if DEC.match(g):
        if g.startswith("0."):
            forms.append(("leading_dot", g[1:]))
        forms.append(("percent_of_decimal", f"{float(g) * 100:g}\\%"))
    parts = [p.strip() for p in split_top(g)]
    if len(parts) >= 2 and not g.startswith(("(", "[", "\\left", "\\begin")):
        shuffled = parts[:]
        rng.shuffle(shuffled)
        forms.append(("set_reordered", ", ".join(shuffled)))
        forms.append(("set_braces", "\\{" + ", ".join(parts) + "\\}"))
    if " " not in g and any(op in g for op in "+-=,"):
        forms.append(("spaced", re.sub(r"([+=,])", r" \1 ", g)))
    if "\\text{" in g:
        forms.append(("text_unwrapped", re.sub(r"\\text\{([^}]*)\}", r"\1", g)))
    return forms


def newer_equal_forms(g):
    """Renderings of gold `g` that real outputs have and the first families lacked: decimal
    commas, approximations after the exact value, ratios, percent words, `!=`, labelled tuples."""
    forms = []
    f = as_fraction(g)
    if DEC.match(g) and len(g.split(".")[1]) != 3:
        # A decimal comma, as most of Europe writes it (three digits would read as thousands).
        forms.append(("decimal_comma", g.replace(".", ",")))
    if f is not None and f.denominator != 1:
        forms.append(("approx_chain", f"x = {g} \\approx {float(f):.2f}"))
        if f > 0:
            forms.append(("ratio", f"{f.numerator}:{f.denominator}"))
    m = PERCENT.match(g)
    if m:
        forms.append(("percent_pct", f"{m.group(1)} pct"))
        forms.append(("percent_word", f"{m.group(1)} percentage"))
    if "\\neq" in g:
        forms.append(("bang_equals", g.replace("\\neq", "!=")))
    inner = g[1:-1] if g.startswith("(") and g.endswith(")") else ""
    if 2 <= len(split_top(inner)) <= 3 and "\\cup" not in g:
        names = ["a", "b", "c"][: len(split_top(inner))]
        forms.append(("labelled_tuple", f"({', '.join(names)}) = {g}"))
    return forms


def split_top(s):
    """Splits on commas outside brackets; `,\\!` and `{,}` are thousands separators, not lists."""
    if re.search(r"\d,\s*\\!\s*\d|\d\{,\}\d", s):
        return [s]
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(s):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(s[start:i])
            start = i + 1
    parts.append(s[start:])
    return parts


def different_forms(rng, g):
    """Renderings of an answer that is not `g` but looks close."""
    forms = []
    f = as_fraction(g)
    if f is not None and f.denominator == 1:
        n = int(f)
        forms.append(("off_by_one", str(n + rng.choice([-1, 1]))))
        forms.append(("sign_flip", str(-n) if n != 0 else "1"))
        if abs(n) >= 10:
            s = str(abs(n))
            swapped = s[1] + s[0] + s[2:]
            if swapped != s:
                forms.append(("digits_swapped", ("-" if n < 0 else "") + swapped.lstrip("0") or "0"))
        forms.append(("float_off_1e-3", f"{n + 0.001:.3f}"))
    if f is not None and f.denominator != 1:
        forms.append(("decimal_off_1e-3", f"{float(f) + 0.001:.6f}"))
        forms.append(("numerator_plus_one", f"\\frac{{{f.numerator + 1}}}{{{f.denominator}}}"))
        if Fraction(f"{float(f):.3f}") != f:
            forms.append(("decimal_truncated", f"{float(f):.3f}"))
    parts = [p.strip() for p in split_top(g)]
    if len(parts) >= 2 and not g.startswith(("(", "[", "\\left", "\\begin")):
        forms.append(("set_missing_element", ", ".join(parts[:-1])))
        forms.append(("set_extra_element", ", ".join(parts + ["100"])))
    m = re.match(r"^(\\left)?([\(\[])(.*?)(\\right)?([\)\]])$", g)
    if m and "," in g:
        flip = {"(": "[", "[": "(", ")": "]", "]": ")"}
        left, right = m.group(2), m.group(5)
        inner = m.group(3)
        if "infty" not in inner.split(",")[-1]:
            forms.append(("interval_end_flipped", f"{left}{inner}{flip[right]}"))
        items = [p.strip() for p in split_top(inner)]
        if len(items) == 2 and items[0] != items[1]:
            forms.append(("tuple_swapped", f"{left}{items[1]}, {items[0]}{right}"))
    if SQRT.search(g):
        forms.append(("radicand_changed", SQRT.sub(lambda m: f"\\sqrt{{{int(m.group(1)) + 1}}}", g, count=1)))
    if "\\pi" in g and g.replace("\\pi", "").strip():
        forms.append(("pi_dropped", g.replace("\\pi", "")))
    if re.search(r"[a-z]", g) and "\\" not in g and f is None:
        forms.append(("variable_changed", g.replace("x", "y") if "x" in g else g + "+1"))
    if "\\text{" in g:
        forms.append(("text_changed", re.sub(r"\\text\{([^}]*)\}", r"\\text{Nobody}", g)))
    if "matrix" in g:
        forms.append(("matrix_entry_changed", re.sub(r"(-?\d+)", lambda m: str(int(m.group(1)) + 1), g, count=1)))
    if not forms:
        forms.append(("plus_one", f"{g} + 1"))
    return forms


# Forms real outputs have that MATH-500's answers do not show, written for this script: golds
# with their equal and different renderings (Math-Verify's verdict is still the one of record).
EXTRA = [
    ("-2 \\le x \\le 7", [("interval_of_relation", "x \\in [-2, 7]", "equal"),
                            ("interval_bare", "[-2, 7]", "equal"),
                            ("interval_open_end", "[-2, 7)", "different")]),
    ("0 < y < 1", [("interval_of_relation", "(0, 1)", "equal"),
                   ("interval_wrong_end", "(0, 2)", "different")]),
    ("x > 3", [("interval_of_relation", "(3, \\infty)", "equal"),
               ("interval_closed", "[3, \\infty)", "different")]),
    ("S_{1}:S_{2}=7:32", [("ratio", "7:32", "equal"), ("ratio_fraction", "\\frac{7}{32}", "equal"),
                          ("ratio_flipped", "32:7", "different")]),
    ("(p,q)=(3,2)", [("labelled_tuple_value", "(3, 2)", "equal"),
                     ("labelled_tuple_swapped", "(2, 3)", "different")]),
    ("p=5,q=2;p=7,q=2", [("assignment_groups", "(5,2),(7,2)", "equal"),
                         ("assignment_groups_missing", "(5,2)", "different")]),
    ("|AB|=1", [("label_on_left", "1", "equal"), ("label_on_left_wrong", "2", "different")]),
    ("x \\neq 3", [("bang_equals", "x != 3", "equal"), ("bang_equals_wrong", "x != 4", "different")]),
    ("\\begin{pmatrix}6 & 8 \\\\ 10 & 12\\end{pmatrix}",
     [("matrix_sum", "\\begin{pmatrix}1 & 2 \\\\ 3 & 4\\end{pmatrix} + \\begin{pmatrix}5 & 6 \\\\ 7 & 8\\end{pmatrix}", "equal"),
      ("matrix_sum_wrong", "\\begin{pmatrix}1 & 2 \\\\ 3 & 4\\end{pmatrix} + \\begin{pmatrix}5 & 6 \\\\ 7 & 9\\end{pmatrix}", "different")]),
    ("(1,3)", [("set_braces_plain", "{1,3}", "equal")]),
    ("14916", [("thousands_braced_spaced", "14 {, }916", "equal")]),
]


def several_boxes(g):
    """A list answer boxed one element at a time, and with one element wrong."""
    parts = [p.strip() for p in split_top(g)]
    if len(parts) < 2 or g.startswith(("(", "[", "\\left", "\\begin")):
        return []
    boxes = " and ".join(f"$\\boxed{{{p}}}$" for p in parts)
    wrong = " and ".join(f"$\\boxed{{{p}}}$" for p in parts[:-1] + ["100"])
    return [("several_boxes", f"So the solutions are {boxes}.", "equal"),
            ("several_boxes_one_wrong", f"So the solutions are {wrong}.", "different")]


def pairs(split, seed):
    rng = random.Random(seed)
    # The newer families draw from their own generator, so the first families' pairs stay.
    newer = random.Random(seed + 7919)
    n = 0

    def emit(gold, response, family, intent):
        nonlocal n
        n += 1
        return {"id": f"{split}-{n:05d}", "gold": gold, "response": response,
                "family": family, "intent": intent}

    for source, g in golds(split):
        eq = equal_forms(rng, g)
        for name, latex in eq:
            styles = sentences(rng, latex)
            # Each form in a few of the ways models write it, not all: the pair count stays
            # proportional to the variety of golds.
            for style, response in rng.sample(styles, 2 if name == "as_is" else 1):
                yield emit(g, response, f"{source}:equal:{name}:{style}", "equal")
        for name, latex in different_forms(rng, g):
            style, response = rng.choice(sentences(rng, latex))
            yield emit(g, response, f"{source}:different:{name}:{style}", "different")
        # The gold written as LaTeX, or as a whole solution ending in its boxed answer.
        yield emit(f"${g}$", f"\\boxed{{{g}}}", f"{source}:equal:gold_in_dollars:boxed_bare", "equal")
        yield emit(f"We work it out step by step, and so the answer is $\\boxed{{{g}}}$.",
                   rng.choice(sentences(rng, g))[1], f"{source}:equal:gold_solution", "equal")
        for name, latex in [("as_is", g)] + newer_equal_forms(g):
            styles = sentences(newer, latex) + newer_sentences(latex)
            for style, response in newer.sample(styles, 1):
                yield emit(g, response, f"{source}:equal:{name}:{style}", "equal")
        for name, response, intent in several_boxes(g):
            yield emit(g, response, f"{source}:{intent}:{name}:sentence", intent)
    if split == "dev":
        for g, renderings in EXTRA:
            for name, latex, intent in renderings:
                style, response = newer.choice(sentences(newer, latex) + newer_sentences(latex))
                yield emit(g, response, f"extra:{intent}:{name}:{style}", intent)
        for gold, response in labelled():
            yield emit(gold, response, "labelled", "see-label")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=["dev", "heldout"], required=True)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    for p in pairs(args.split, args.seed):
        sys.stdout.write(json.dumps(p, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
