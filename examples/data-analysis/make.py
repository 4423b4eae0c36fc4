#!/usr/bin/env python3
"""Writes start's data-analysis example set: a year of daily sales with planted anomalies, the
returns (Parquet) and the stores (SQLite) behind them, and questions with exact numeric answers.

    python3 examples/data-analysis/make.py      # rewrites the files beside this script

The data is made up for this project from a seeded generator, so the same script writes the
same rows; the answers are computed from those rows here, not written by hand. What is planted:

- the North region's Pro product sells nothing from 2024-11-08 until 2024-12-02 (its store closed
  and a new one opened: stores.sqlite says so), which makes November the weakest month although
  it is not the shortest;
- one row (East, Basic, 2024-06-15) is recorded twice;
- one row (West, Plus, 2024-03-03) has a negative number of units (a return booked as a sale);
- one row (South, Pro, 2024-08-20) has its unit price mistyped as 4990 instead of 499;
- Black Friday (2024-11-29) sells three times the usual units everywhere.

Needs pyarrow for the Parquet file (scripts/setup installs it).
"""

import csv
import datetime as dt
import hashlib
import io
import json
import os
import random
import sqlite3

import pyarrow as pa
import pyarrow.parquet as pq

HERE = os.path.dirname(os.path.abspath(__file__))
REGIONS = ["North", "South", "East", "West"]
PRICES = {"Basic": 49, "Plus": 149, "Pro": 499}
DEMAND = {"North": 1.2, "South": 1.0, "East": 0.9, "West": 0.8}
MIX = {"Basic": 9, "Plus": 4, "Pro": 2}
CLOSED_FROM = dt.date(2024, 11, 8)
REOPENED = dt.date(2024, 12, 2)
BLACK_FRIDAY = dt.date(2024, 11, 29)
DUPLICATE = (dt.date(2024, 6, 15), "East", "Basic")
NEGATIVE = (dt.date(2024, 3, 3), "West", "Plus")
MISTYPED = (dt.date(2024, 8, 20), "South", "Pro")


def days():
    d = dt.date(2024, 1, 1)
    while d.year == 2024:
        yield d
        d += dt.timedelta(days=1)


def sales_rows():
    rng = random.Random(2024)
    rows = []
    for d in days():
        weekday = 1.3 if d.weekday() >= 5 else 1.0
        for region in REGIONS:
            for product, price in PRICES.items():
                units = round(MIX[product] * DEMAND[region] * weekday * rng.uniform(0.7, 1.3))
                if region == "North" and product == "Pro" and CLOSED_FROM <= d < REOPENED:
                    units = 0
                if d == BLACK_FRIDAY:
                    units *= 3
                if (d, region, product) == NEGATIVE:
                    units = -5
                if (d, region, product) == MISTYPED:
                    price = 4990
                row = {"date": d.isoformat(), "region": region, "product": product,
                       "units": units, "unit_price": price, "revenue": units * price}
                rows.append(row)
                if (d, region, product) == DUPLICATE:
                    rows.append(dict(row))
    return rows


def returns_rows():
    rng = random.Random(11)
    rows = []
    for d in days():
        if d.weekday() != 0:
            continue
        for region in REGIONS:
            amount = rng.randrange(50, 400)
            if region == "North" and d.month == 11:
                amount += 600
            rows.append({"date": d, "region": region, "amount": amount})
    return rows


def stores_rows():
    return [
        (1, "North", "Aberdeen", "2019-03-01", None),
        (2, "North", "Inverness", "2021-05-15", "2024-11-07"),
        (3, "North", "Dundee", "2024-12-02", None),
        (4, "South", "Brighton", "2018-01-10", None),
        (5, "South", "Bournemouth", "2022-09-01", None),
        (6, "East", "Norwich", "2017-06-30", None),
        (7, "East", "Ipswich", "2020-02-14", "2023-12-31"),
        (8, "East", "Colchester", "2024-04-01", None),
        (9, "West", "Bristol", "2016-11-11", None),
        (10, "West", "Exeter", "2023-07-07", None),
    ]


def write_csv(path, rows):
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(out.getvalue())


def write_parquet(path, rows):
    table = pa.table({
        "date": pa.array([r["date"] for r in rows], pa.date32()),
        "region": pa.array([r["region"] for r in rows], pa.string()),
        "amount": pa.array([r["amount"] for r in rows], pa.int64()),
    })
    pq.write_table(table, path, compression="zstd")


def write_sqlite(path, rows):
    if os.path.exists(path):
        os.unlink(path)
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE stores (store_id INTEGER PRIMARY KEY, region TEXT NOT NULL, "
                "city TEXT NOT NULL, opened TEXT NOT NULL, closed TEXT)")
    con.executemany("INSERT INTO stores VALUES (?, ?, ?, ?, ?)", rows)
    con.commit()
    con.close()


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def month_revenue(rows, month, region=None):
    return sum(r["revenue"] for r in rows
               if r["date"][5:7] == "%02d" % month and (region is None or r["region"] == region))


def main():
    sales, returns, stores = sales_rows(), returns_rows(), stores_rows()
    files = {"sales.csv": os.path.join(HERE, "sales.csv"),
             "returns.parquet": os.path.join(HERE, "returns.parquet"),
             "stores.sqlite": os.path.join(HERE, "stores.sqlite")}
    write_csv(files["sales.csv"], sales)
    write_parquet(files["returns.parquet"], returns)
    write_sqlite(files["stores.sqlite"], stores)
    attach = {name: {"path": name, "sha256": sha256(path)} for name, path in files.items()}

    by_month = {m: month_revenue(sales, m) for m in range(1, 13)}
    lowest = min(by_month, key=by_month.get)
    assert lowest == 11, by_month
    assert by_month[2] > by_month[11], "November must be weakest although February is shorter"
    zero_days = sum(1 for r in sales if r["region"] == "North" and r["product"] == "Pro"
                    and r["date"].startswith("2024-11") and r["units"] == 0)
    negative = sum(1 for r in sales if r["units"] < 0)
    mistyped = next(r["revenue"] for r in sales if r["unit_price"] != PRICES[r["product"]])
    shortfall = month_revenue(sales, 10, "North") - month_revenue(sales, 11, "North")
    north_returns = sum(r["amount"] for r in returns
                        if r["region"] == "North" and r["date"].month == 11)
    day = dt.date(2024, 11, 15).isoformat()
    open_stores = sum(1 for _, _, _, opened, closed in stores
                      if opened <= day and (closed is None or closed >= day))
    problems = [
        ("nov-revenue", ["sales.csv"],
         "sales.csv holds the daily sales of 2024, one row per day, region and product. What was "
         "the total revenue (the sum of the revenue column) in November 2024?",
         by_month[11]),
        ("weakest-month", ["sales.csv"],
         "sales.csv holds the daily sales of 2024. Which month had the lowest total revenue? "
         "Answer with the month's number, from 1 to 12.",
         lowest),
        ("north-pro-zero-days", ["sales.csv"],
         "sales.csv holds the daily sales of 2024. On how many days of November 2024 did the North "
         "region sell no units of the Pro product?",
         zero_days),
        ("negative-units", ["sales.csv"],
         "sales.csv holds the daily sales of 2024. How many rows record a negative number of units?",
         negative),
        ("duplicate-day", ["sales.csv"],
         "sales.csv should hold one row per day, region and product, but one row was recorded "
         "twice. On which day of June 2024 was that? Answer with the day of the month.",
         DUPLICATE[0].day),
        ("mistyped-price", ["sales.csv"],
         "In sales.csv each product has one unit price all year, except in a single row where the "
         "price was mistyped. What revenue does that row record?",
         mistyped),
        ("north-shortfall", ["sales.csv"],
         "sales.csv holds the daily sales of 2024. By how many dollars did the North region's "
         "revenue in November 2024 fall short of its revenue in October 2024?",
         shortfall),
        ("north-returns", ["returns.parquet"],
         "returns.parquet records the returns of 2024 (date, region, amount in dollars). What was "
         "the total amount returned in the North region in November 2024?",
         north_returns),
        ("open-stores", ["stores.sqlite"],
         "stores.sqlite lists the stores (table stores: opened and closed dates, closed empty "
         "while a store is open). How many stores were open on 2024-11-15, counting a store open "
         "on the day it opened and on the day it closed?",
         open_stores),
    ]
    with open(os.path.join(HERE, "problems.jsonl"), "w", encoding="utf-8") as f:
        for pid, names, question, answer in problems:
            row = {"id": "data-" + pid, "source": "data-analysis", "kind": "math",
                   "question": question, "answer": str(answer),
                   "files": [attach[n] for n in names]}
            f.write(json.dumps(row) + "\n")
    print("wrote %d problems; answers: %s" % (len(problems),
                                               ", ".join(str(p[3]) for p in problems)))


if __name__ == "__main__":
    main()
