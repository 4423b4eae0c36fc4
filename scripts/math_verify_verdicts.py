#!/usr/bin/env python3
"""Math-Verify's verdict on every gold/prediction pair of a pairs file (scripts/math_pairs.py).

The reference grader, used the way open-r1 and lighteval use it: the gold is parsed as LaTeX
(wrapped in $...$ unless it already carries its own delimiters or a \\boxed{}), the prediction
with the default extraction (LaTeX and plain expressions), and `verify(gold, prediction)`
decides. Prints one JSON line per pair, {"id", "math_verify", "seconds"}, the seconds being the
parse and verify time of that pair on one core; a Math-Verify error or time-out counts as false,
as it does for its users.

    python3 scripts/math_verify_verdicts.py pairs.jsonl > verdicts.jsonl
"""

import json
import logging
import sys
import time

logging.disable(logging.WARNING)

from math_verify import parse, verify  # noqa: E402  (installed by scripts/setup)


def gold_text(gold):
    return gold if ("$" in gold or "\\boxed" in gold or "\\(" in gold) else f"${gold}$"


def main():
    for line in open(sys.argv[1]):
        pair = json.loads(line)
        started = time.perf_counter()
        try:
            ok = bool(verify(parse(gold_text(pair["gold"])), parse(pair["response"])))
        except Exception:
            ok = False
        seconds = time.perf_counter() - started
        sys.stdout.write(json.dumps({"id": pair["id"], "math_verify": ok, "seconds": seconds}) + "\n")


if __name__ == "__main__":
    main()
