"""Recomputes every answer of examples/data-analysis/problems.jsonl from its attached files with
engines start does not use for them: DuckDB for the CSV and Parquet questions, pandas for the
SQLite one. Prints each answer and exits non-zero naming the first that differs. Used by
tests/tests/examples.rs.

    python3 check_data_answers.py examples/data-analysis
"""

import json
import os
import sqlite3
import sys

import duckdb
import pandas as pd


def main():
    d = sys.argv[1]
    sales = "read_csv('%s')" % os.path.join(d, "sales.csv").replace("'", "''")
    returns = "read_parquet('%s')" % os.path.join(d, "returns.parquet").replace("'", "''")

    def one(sql):
        rows = duckdb.sql(sql).fetchall()
        assert len(rows) == 1 and len(rows[0]) == 1, (sql, rows)
        return rows[0][0]

    stores = pd.read_sql("SELECT * FROM stores",
                         sqlite3.connect(os.path.join(d, "stores.sqlite")))
    day = "2024-11-15"
    open_on_day = int(((stores.opened <= day)
                       & (stores.closed.isna() | (stores.closed >= day))).sum())
    computed = {
        "data-nov-revenue": one(
            f"select sum(revenue) from {sales} where date >= date '2024-11-01' "
            f"and date < date '2024-12-01'"),
        "data-weakest-month": one(
            f"select m from (select month(date) as m, sum(revenue) as r from {sales} "
            f"group by m order by r limit 1)"),
        "data-north-pro-zero-days": one(
            f"select count(*) from (select date from {sales} where region = 'North' and "
            f"product = 'Pro' and month(date) = 11 group by date having sum(units) = 0)"),
        "data-negative-units": one(f"select count(*) from {sales} where units < 0"),
        "data-duplicate-day": one(
            f"select day(date) from {sales} where month(date) = 6 "
            f"group by date, region, product having count(*) > 1"),
        "data-mistyped-price": one(
            f"select s.revenue from {sales} s join (select product, mode(unit_price) as p "
            f"from {sales} group by product) m using (product) where s.unit_price <> m.p"),
        "data-north-shortfall": one(
            f"select sum(revenue) filter (where month(date) = 10) - "
            f"sum(revenue) filter (where month(date) = 11) from {sales} where region = 'North'"),
        "data-north-returns": one(
            f"select sum(amount) from {returns} where region = 'North' and month(date) = 11"),
        "data-open-stores": open_on_day,
    }
    with open(os.path.join(d, "problems.jsonl"), encoding="utf-8") as f:
        problems = [json.loads(line) for line in f]
    if sorted(p["id"] for p in problems) != sorted(computed):
        print("problems and checks differ: %s" % sorted(p["id"] for p in problems))
        sys.exit(1)
    for p in problems:
        got = str(computed[p["id"]])
        print("%s: %s (file says %s)" % (p["id"], got, p["answer"]))
        if got != p["answer"]:
            print("MISMATCH: %s" % p["id"])
            sys.exit(1)
    print("%d answers agree" % len(problems))


if __name__ == "__main__":
    main()
