#!/usr/bin/env python3
"""Check a directory of Security Lake objects (`parse --format parquet --out DIR`, or a lake
bucket's objects copied down) against the `ocsf` NDJSON of the same inputs.

    .venv/bin/python scripts/lake_check.py DIR EVENTS.ndjson

DIR holds `<class>/region=R/accountId=A/eventDay=YYYYMMDD/<name>.parquet` (the class folder is
the custom source's location). Checks, each failure one line "DIR/...: reason", exit 1 if any:

- every object: zstd on every column chunk, row groups under 256 MB compressed, every row of
  the object's class, its partition values equal to the row's region, account and UTC day;
- the same Arrow schema in every object of a class;
- read with pyarrow and with DuckDB (`read_parquet(..., hive_partitioning = true)`): the rows
  are exactly the events of EVENTS.ndjson, no more, no fewer (same `metadata.uid` and `time`);
- every row turned back into JSON (nulls dropped, `unmapped` a map of strings) is its event
  of EVENTS.ndjson, member for member, but for `unmapped`, whose values that are not strings
  are their JSON text;
- every such row passes `scripts/ocsf_check.py` (pydantic-ocsf, OCSF 1.1.0).

Prints a JSON summary on success.
"""

from __future__ import annotations

import collections
import datetime
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

CLASSES = {
    "base_event": 0,
    "authentication": 3002,
    "account_change": 3001,
    "datastore_activity": 6005,
    "api_activity": 6003,
}
MAX_ROW_GROUP = 256 * 1024 * 1024


def strip(value):
    """A row as JSON: nulls dropped, maps (lists of pairs) as objects."""
    if isinstance(value, dict):
        return {k: strip(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        if value and all(isinstance(x, tuple) and len(x) == 2 for x in value):
            return {k: v for k, v in value}
        return [strip(x) for x in value]
    return value


def as_row(event: dict) -> tuple[dict, dict]:
    """An event as its row should read back: nulls dropped, and its `unmapped` apart, each value
    as the JSON its text in the lake decodes to (strings are stored as they are)."""
    event = dict(event)
    unmapped = event.pop("unmapped", None) or {}
    event = strip(event)
    return event, {k: unquote(v) if isinstance(v, str) else v for k, v in unmapped.items()}


def unquote(text: str):
    """A string of `unmapped` as the row's value decodes: JSON text when it is some."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def day(ms: int) -> str:
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).strftime("%Y%m%d")


def main() -> int:
    root, events_path = Path(sys.argv[1]), Path(sys.argv[2])
    errors: list[str] = []
    schemas: dict[str, object] = {}
    rows: list[dict] = []
    objects = sorted(root.glob("*/region=*/accountId=*/eventDay=*/*.parquet"))
    stray = [p for p in root.rglob("*") if p.is_file() and p not in set(objects)]
    for p in stray:
        errors.append(f"{p}: not a lake object")
    for path in objects:
        rel = path.relative_to(root)
        cls, region, account, event_day = (
            rel.parts[0],
            rel.parts[1][len("region="):],
            rel.parts[2][len("accountId="):],
            rel.parts[3][len("eventDay="):],
        )
        if cls not in CLASSES:
            errors.append(f"{rel}: unknown class folder")
            continue
        f = pq.ParquetFile(path)
        meta = f.metadata
        for g in range(meta.num_row_groups):
            group = meta.row_group(g)
            size = sum(group.column(c).total_compressed_size for c in range(group.num_columns))
            if size > MAX_ROW_GROUP:
                errors.append(f"{rel}: row group {g} has {size} compressed bytes")
            for c in range(group.num_columns):
                if group.column(c).compression != "ZSTD":
                    errors.append(f"{rel}: column {group.column(c).path_in_schema} is {group.column(c).compression}")
        schema = f.schema_arrow
        if cls in schemas and schemas[cls] != schema:
            errors.append(f"{rel}: schema differs from the other objects of {cls}")
        schemas.setdefault(cls, schema)
        for row in f.read().to_pylist():
            event = strip(row)
            if event.get("class_uid") != CLASSES[cls]:
                errors.append(f"{rel}: a row of class {event.get('class_uid')}")
            cloud = event.get("cloud", {})
            if cloud.get("region", "unknown") != region or cloud.get("account", {}).get("uid", "unknown") != account:
                errors.append(f"{rel}: row {event['metadata'].get('uid')} of {cloud}")
            if day(event["time"]) != event_day:
                errors.append(f"{rel}: row {event['metadata'].get('uid')} at {event['time']} is not of {event_day}")
            rows.append(event)

    expected = collections.Counter()
    events = collections.defaultdict(list)
    for line in events_path.read_text().splitlines():
        if line.strip():
            e = json.loads(line)
            expected[(e["metadata"].get("uid"), e["time"])] += 1
            events[(e["metadata"].get("uid"), e["time"])].append(as_row(e))
    got = collections.Counter((r["metadata"].get("uid"), r["time"]) for r in rows)
    if got != expected:
        errors.append(f"pyarrow: {sum((got - expected).values())} rows too many, {sum((expected - got).values())} missing")
    differ = 0
    for r in rows:
        row = dict(r)
        unmapped = {k: unquote(v) for k, v in (row.pop("unmapped", None) or {}).items()}
        candidates = events.get((r["metadata"].get("uid"), r["time"]), [])
        if not any(row == e and unmapped == u for e, u in candidates):
            differ += 1
            if differ <= 5 and candidates:
                e, u = candidates[0]
                diff = sorted(
                    [f"{k}: {row.get(k)!r} vs {e.get(k)!r}" for k in set(row) | set(e) if row.get(k) != e.get(k)]
                    + [f"unmapped.{k}: {unmapped.get(k)!r} vs {u.get(k)!r}" for k in set(unmapped) | set(u) if unmapped.get(k) != u.get(k)]
                )
                errors.append(f"row {r['metadata'].get('uid')} differs from its event: {'; '.join(diff)[:600]}")

    if objects:
        con = duckdb.connect()
        glob = str(root / "*" / "*" / "*" / "*" / "*.parquet")
        result = con.execute(
            "select metadata.uid, time, cloud.region, cloud.account.uid, region, accountId, eventDay"
            " from read_parquet(?, hive_partitioning = true, union_by_name = true)",
            [glob],
        ).fetchall()
        duck = collections.Counter((u, t) for u, t, *_ in result)
        if duck != expected:
            errors.append(f"duckdb: {sum((duck - expected).values())} rows too many, {sum((expected - duck).values())} missing")
        for u, t, r, a, hr, ha, hd in result:
            if (r or "unknown", a or "unknown", day(t)) != (hr, str(ha), str(hd)):
                errors.append(f"duckdb: row {u}: partition {hr}/{ha}/{hd} for {r}/{a}/{day(t)}")

    with tempfile.NamedTemporaryFile("w", suffix=".ndjson", delete=False) as out:
        for r in rows:
            out.write(json.dumps(r) + "\n")
    check = subprocess.run(
        [sys.executable, str(Path(__file__).parent / "ocsf_check.py"), out.name],
        capture_output=True,
        text=True,
    )
    Path(out.name).unlink()
    if check.returncode != 0:
        errors.extend(("ocsf_check: " + line) for line in check.stdout.splitlines()[:20])

    for e in errors[:50]:
        print(e)
    if errors:
        return 1
    print(json.dumps({"objects": len(objects), "rows": len(rows), "classes": sorted(schemas)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
