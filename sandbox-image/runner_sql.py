"""The SQL tool: a block's statements run with SQLite from the standard library against the
attached files (CSV and Parquet loaded as tables named after the file, SQLite files attached
read-only), statements that would reach outside the data refused by SQLite's authorizer, each
statement's rows printed as a text table."""

import json
import os
import sys

from runner_config import SQL_ROWS

# --- SQL ---------------------------------------------------------------------------------------

# SQLite's authorizer action codes (sqlite3.h).
(SQL_CREATE_INDEX, SQL_CREATE_TABLE, SQL_CREATE_TEMP_INDEX, SQL_CREATE_TEMP_TABLE,
 SQL_CREATE_TEMP_TRIGGER, SQL_CREATE_TEMP_VIEW, SQL_CREATE_TRIGGER, SQL_CREATE_VIEW, SQL_DELETE,
 SQL_DROP_INDEX, SQL_DROP_TABLE, SQL_DROP_TEMP_INDEX, SQL_DROP_TEMP_TABLE, SQL_DROP_TEMP_TRIGGER,
 SQL_DROP_TEMP_VIEW, SQL_DROP_TRIGGER, SQL_DROP_VIEW, SQL_INSERT, SQL_PRAGMA, SQL_READ, SQL_SELECT,
 SQL_TRANSACTION, SQL_UPDATE, SQL_ATTACH, SQL_DETACH, SQL_ALTER_TABLE, SQL_REINDEX, SQL_ANALYZE,
 SQL_CREATE_VTABLE, SQL_DROP_VTABLE, SQL_FUNCTION, SQL_SAVEPOINT, SQL_RECURSIVE) = range(1, 34)
SQL_ALWAYS = {SQL_SELECT, SQL_READ, SQL_RECURSIVE, SQL_TRANSACTION, SQL_SAVEPOINT,
              SQL_CREATE_TEMP_TABLE, SQL_CREATE_TEMP_VIEW, SQL_CREATE_TEMP_INDEX,
              SQL_DROP_TEMP_TABLE, SQL_DROP_TEMP_VIEW, SQL_DROP_TEMP_INDEX}
SQL_WRITES = {SQL_INSERT: "inserting into", SQL_UPDATE: "updating", SQL_DELETE: "deleting from"}
# Pragmas that only describe: anything else could change the connection or reach a file.
SQL_PRAGMAS = {"table_info", "table_xinfo", "table_list", "index_list", "index_info",
               "index_xinfo", "foreign_key_list", "database_list", "collation_list",
               "function_list", "pragma_list"}
SQL_FUNCTIONS_REFUSED = {"load_extension", "fts3_tokenizer", "readfile", "writefile", "edit"}
SQL_REFUSED = {
    SQL_ATTACH: "ATTACH (and VACUUM, which attaches its output) would reach outside the "
                "attached data",
    SQL_DETACH: "DETACH would change the attached data",
    SQL_CREATE_VTABLE: "virtual tables can reach outside the attached data",
    SQL_ANALYZE: "ANALYZE writes to the data",
    SQL_REINDEX: "REINDEX writes to the data",
}
SQL_FILE_FORMATS = {"csv": "csv", "parquet": "parquet", "sqlite": "sqlite", "sqlite3": "sqlite",
                    "db": "sqlite"}


def sql_table_name(file_name):
    """The table (or, for a SQLite file, the schema) a file is queried as: its name without
    the extension, every character other than a letter, digit or '_' made '_'."""
    stem = file_name.rsplit(".", 1)[0]
    name = "".join(c if c.isalnum() or c == "_" else "_" for c in stem)
    return name if name and not name[0].isdigit() else "t_" + name


def sql_quote(ident):
    return '"' + ident.replace('"', '""') + '"'


def sql_split(text):
    """The statements of `text`, split at semicolons outside strings, quoted names and
    comments; empty statements are dropped."""
    out, cur, i, n = [], [], 0, len(text)
    while i < n:
        c = text[i]
        if c in "'\"`[":
            end = "]" if c == "[" else c
            j = i + 1
            while j < n:
                if text[j] == end:
                    if end != "]" and j + 1 < n and text[j + 1] == end:
                        j += 2
                        continue
                    break
                j += 1
            cur.append(text[i:j + 1])
            i = j + 1
        elif text.startswith("--", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            cur.append(text[i:j])
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            cur.append(text[i:j])
            i = j
        elif c == ";":
            out.append("".join(cur))
            cur = []
            i += 1
        else:
            cur.append(c)
            i += 1
    out.append("".join(cur))
    # A statement of comments and blanks alone is no statement.
    return [stmt.strip() for stmt in out if sql_meaningful(stmt)]


def sql_meaningful(stmt):
    i, n = 0, len(stmt)
    while i < n:
        if stmt[i].isspace():
            i += 1
        elif stmt.startswith("--", i):
            j = stmt.find("\n", i)
            i = n if j < 0 else j
        elif stmt.startswith("/*", i):
            j = stmt.find("*/", i + 2)
            i = n if j < 0 else j + 2
        else:
            return True
    return False


def sql_infer(values):
    """The column type of CSV values: INTEGER, REAL or TEXT (empty cells are NULL)."""
    kind = "INTEGER"
    for v in values:
        if v == "":
            continue
        if kind == "INTEGER":
            try:
                int(v)
                continue
            except ValueError:
                kind = "REAL"
        if kind == "REAL":
            try:
                float(v)
                continue
            except ValueError:
                return "TEXT"
    return kind


def sql_cell(v, kind):
    if v == "":
        return None
    if kind == "INTEGER":
        return int(v)
    if kind == "REAL":
        return float(v)
    return v


def sql_load_csv(con, table, name):
    import csv
    with open(name, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise ValueError("%s is empty: a CSV file needs a header row" % name)
    header, body = rows[0], rows[1:]
    width = len(header)
    body = [r + [""] * (width - len(r)) if len(r) < width else r[:width] for r in body]
    kinds = [sql_infer(r[i] for r in body) for i in range(width)]
    cols = ", ".join("%s %s" % (sql_quote(h or "column%d" % (i + 1)), k)
                     for i, (h, k) in enumerate(zip(header, kinds)))
    con.execute("CREATE TABLE %s (%s)" % (sql_quote(table), cols))
    con.executemany("INSERT INTO %s VALUES (%s)" % (sql_quote(table), ", ".join("?" * width)),
                    ([sql_cell(v, k) for v, k in zip(r, kinds)] for r in body))


def sql_load_parquet(con, table, name):
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ValueError("%s: reading Parquet needs pyarrow, which this sandbox's Python lacks"
                         % name)
    import datetime
    import decimal
    t = pq.read_table(name)

    def affinity(typ):
        import pyarrow.types as pt
        if pt.is_integer(typ) or pt.is_boolean(typ):
            return "INTEGER"
        if pt.is_floating(typ) or pt.is_decimal(typ):
            return "REAL"
        if pt.is_binary(typ) or pt.is_large_binary(typ):
            return "BLOB"
        return "TEXT"

    def value(v):
        if isinstance(v, bool):
            return int(v)
        if isinstance(v, decimal.Decimal):
            return float(v)
        if isinstance(v, (datetime.date, datetime.datetime, datetime.time)):
            return v.isoformat(sep=" ") if isinstance(v, datetime.datetime) else v.isoformat()
        if isinstance(v, (list, dict)):
            return json.dumps(v, default=str)
        return v

    cols = ", ".join("%s %s" % (sql_quote(f.name), affinity(f.type)) for f in t.schema)
    con.execute("CREATE TABLE %s (%s)" % (sql_quote(table), cols))
    names = t.schema.names
    con.executemany("INSERT INTO %s VALUES (%s)" % (sql_quote(table), ", ".join("?" * len(names))),
                    ([value(r[n]) for n in names] for r in t.to_pylist()))


def sql_format(value):
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, bytes):
        return "<%d bytes>" % len(value)
    return str(value)


def sql_table(names, rows, more):
    """A result as a text table: a header, a rule, the rows, then how many rows in all."""
    cells = [[sql_format(v) for v in r] for r in rows]
    widths = [max([len(n)] + [len(r[i]) for r in cells]) for i, n in enumerate(names)]
    line = lambda vals: " | ".join(v.ljust(w) for v, w in zip(vals, widths)).rstrip()
    out = [line(names), "-+-".join("-" * w for w in widths)]
    out += [line(r) for r in cells]
    total = len(rows) + more
    if more:
        out.append("... %d more rows (%d rows in all)" % (more, total))
    else:
        out.append("(%d row%s)" % (total, "" if total == 1 else "s"))
    return "\n".join(out)


def sql_main(code, names):
    """Runs SQL against the attached files `names` (in the working directory); prints each
    statement's result. Returns the exit status: 0, or 1 after the first failed statement."""
    import sqlite3
    con = sqlite3.connect(":memory:", uri=True, isolation_level=None)
    con.execute("PRAGMA temp_store = MEMORY")
    attached = 0
    try:
        for name in names:
            fmt = SQL_FILE_FORMATS.get(name.rsplit(".", 1)[-1].lower())
            table = sql_table_name(name)
            if fmt == "csv":
                sql_load_csv(con, table, name)
            elif fmt == "parquet":
                sql_load_parquet(con, table, name)
            elif fmt == "sqlite":
                from urllib.parse import quote
                con.execute("ATTACH DATABASE ? AS %s" % sql_quote(table),
                            ("file:%s?mode=ro&immutable=1" % quote(os.path.realpath(name)),))
                attached += 1
    except (ValueError, OSError, sqlite3.Error, UnicodeDecodeError) as e:
        print("Error: cannot load the attached data: %s" % e, file=sys.stderr)
        return 1
    # Past here no database can be attached whatever the authorizer says (VACUUM INTO too).
    con.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, attached)
    refused = []

    def authorize(action, arg1, arg2, db, _source):
        if action in SQL_ALWAYS:
            return sqlite3.SQLITE_OK
        if action == SQL_FUNCTION:
            if (arg2 or "").lower() in SQL_FUNCTIONS_REFUSED:
                refused.append("%s() is not allowed" % arg2)
                return sqlite3.SQLITE_DENY
            return sqlite3.SQLITE_OK
        if action in SQL_WRITES:
            if db == "temp":
                return sqlite3.SQLITE_OK
            if (arg1 or "").lower() in ("sqlite_master", "sqlite_schema"):
                refused.append("the statement would change the attached data's tables (only "
                               "queries and temp objects are allowed)")
            else:
                refused.append("%s %s: the attached data is read-only (CREATE TEMP TABLE makes "
                               "a scratch table)" % (SQL_WRITES[action], arg1))
            return sqlite3.SQLITE_DENY
        if action == SQL_PRAGMA:
            if (arg1 or "").lower() in SQL_PRAGMAS:
                return sqlite3.SQLITE_OK
            refused.append("PRAGMA %s is not allowed" % arg1)
            return sqlite3.SQLITE_DENY
        refused.append(SQL_REFUSED.get(action, "the statement would change the attached data "
                                               "(only queries and temp objects are allowed)"))
        return sqlite3.SQLITE_DENY

    con.set_authorizer(authorize)
    for i, stmt in enumerate(sql_split(code)):
        del refused[:]
        try:
            cur = con.execute(stmt)
            if cur.description is None:
                rows = []
            else:
                rows = cur.fetchmany(SQL_ROWS)
                more = sum(1 for _ in cur)
        except sqlite3.Error as e:
            why = ("refused: " + refused[0]) if refused else str(e)
            print("Error in statement %d: %s" % (i + 1, why), file=sys.stderr)
            return 1
        if cur.description is not None:
            print(sql_table([d[0] for d in cur.description], rows, more))
        elif cur.rowcount >= 0:
            print("(%d row%s changed)" % (cur.rowcount, "" if cur.rowcount == 1 else "s"))
    sys.stdout.flush()
    return 0
