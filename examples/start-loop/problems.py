"""Problems where a tool decides the answer, in the spirit of START's "sum of the digits of 29!".

Exact-answer arithmetic and number theory that a small model cannot do in its head but one to
three lines of Python can: products of five-digit numbers, powers, digit sums of powers and
factorials, modular powers, divisor sums, lcms, prime counts, Fibonacci residues. Generated from a seed, each answer computed here, split into a train
and a held-out set with no (kind, parameters) shared.

    python3 problems.py --seed 0 --train 24 --held-out 12 --out DIR   # DIR/train.jsonl, DIR/held-out.jsonl
"""
import argparse
import json
import math
import os
import random


def product(r):
    a, b = r.randint(10_000, 99_999), r.randint(10_000, 99_999)
    return f"What is {a} \\times {b}?", a * b, ("mul", a, b)


def power(r):
    a, b = r.randint(3, 19), r.randint(15, 30)
    return f"What is {a}^{{{b}}}?", a**b, ("exp", a, b)


def digit_sum_power(r):
    a, b = r.choice([2, 3, 7]), r.randint(40, 120)
    return f"What is the sum of the digits of {a}^{{{b}}}?", sum(map(int, str(a**b))), ("dsp", a, b)


def digit_sum_factorial(r):
    n = r.randint(12, 45)
    return f"What is the sum of the digits of {n}!?", sum(map(int, str(math.factorial(n)))), ("dsf", n)


def mod_power(r):
    a, b, m = r.randint(3, 999), r.randint(100, 99999), r.randint(1000, 99999)
    return f"What is the remainder when {a}^{{{b}}} is divided by {m}?", pow(a, b, m), ("pow", a, b, m)


def prime_count(r):
    n = r.randrange(2000, 60000, 1000)
    sieve = bytearray([1]) * n
    sieve[0:2] = b"\x00\x00"
    for i in range(2, math.isqrt(n - 1) + 1):
        if sieve[i]:
            sieve[i * i :: i] = bytearray(len(sieve[i * i :: i]))
    return f"How many prime numbers are less than {n}?", sum(sieve), ("pi", n)


def divisor_sum(r):
    n = r.randint(10_000, 2_000_000)
    s = sum(d + (n // d if d != n // d else 0) for d in range(1, math.isqrt(n) + 1) if n % d == 0)
    return f"What is the sum of all positive divisors of {n}?", s, ("sigma", n)


def fibonacci_mod(r):
    k, m = r.randint(200, 5000), r.choice([1000, 997, 10007, 100000])
    a, b = 0, 1
    for _ in range(k):
        a, b = b, (a + b) % m
    return f"Let F_1 = F_2 = 1 and F_{{n+2}} = F_{{n+1}} + F_n. What is F_{{{k}}} modulo {m}?", a, ("fib", k, m)


def lcm_range(r):
    n = r.randint(15, 40)
    return f"What is the least common multiple of the integers from 1 to {n}?", math.lcm(*range(1, n + 1)), ("lcm", n)


# One-line computations first (a product, a power, a digit sum), then ones that need a loop.
KINDS = [product, power, digit_sum_power, digit_sum_factorial, mod_power, divisor_sum, lcm_range,
         prime_count, fibonacci_mod]


def generate(seed, count):
    r = random.Random(seed)
    seen, out = set(), []
    while len(out) < count:
        question, answer, key = KINDS[len(out) % len(KINDS)](r)
        if key in seen:
            continue
        seen.add(key)
        out.append({"id": f"loop-{'-'.join(map(str, key))}", "source": "start-loop", "kind": "math",
                    "question": question, "answer": str(answer)})
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train", type=int, default=24)
    ap.add_argument("--held-out", type=int, default=12)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    rows = generate(args.seed, args.train + args.held_out)
    random.Random(args.seed + 1).shuffle(rows)
    os.makedirs(args.out, exist_ok=True)
    for name, part in (("train", rows[: args.train]), ("held-out", rows[args.train :])):
        with open(os.path.join(args.out, f"{name}.jsonl"), "w") as f:
            f.writelines(json.dumps(p) + "\n" for p in part)
        print(f"{name}: {len(part)} problems")


if __name__ == "__main__":
    main()
