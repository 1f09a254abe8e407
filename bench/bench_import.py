"""`anju cloud import` of a large file into PostgreSQL, beside raw COPY of the same rows.

Generates a units file (ANJU_BENCH_IMPORT_ROWS rows, default 1,076,567: about 50 MB) and, with
ANJU_BENCH_IMPORT_KIND=tenants, a tenants file instead (every row encrypted and indexed). Runs
the real command in a subprocess on a fresh schema of ANJU_BENCH_DATABASE_URL and reports its
rows/s and peak RSS; then, in the same run and database, COPYs the same rows, already in
COPY's own text format, into a table like the target (same indexes): the floor any import can
reach. Goals: at least 10,000 rows/s and at most 300 MB RSS.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import text

from cloud import migrate
from cloud.db import make_engine, scratch_schema
from cloud.security import pii
from cloud.security.crypto import development_keys

URL = os.environ.get("ANJU_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
ROWS = int(os.environ.get("ANJU_BENCH_IMPORT_ROWS", "1076567"))
KIND = os.environ.get("ANJU_BENCH_IMPORT_KIND", "units")
PROPERTIES, BUILDINGS = 20, 5
GOAL_ROWS_S, GOAL_RSS_MB = 10_000, 300


def units(org_prop: dict[str, int], blds: dict[tuple[str, str], int]) -> Iterator[tuple[str, str]]:
    """(CSV line, COPY line) of each unit; ids are the ones the import gives the names."""
    for i in range(ROWS):
        p, b = f"P{i % PROPERTIES}", f"B{i // PROPERTIES % BUILDINGS}"
        code, floor, rent = f"{b}-{i:07d}", i % 40 + 1, 150000 + i % 50000
        yield (
            f"{p},{b},{code},{floor},35.50,{rent / 100:.2f},1室1厅\n",
            f"{org_prop[p]}\t{blds[p, b]}\t{code}\t{floor}\t35.50\t1室1厅\t{rent}\tvacant\n",
        )


def tenants(org_prop: dict[str, int], org_id: int) -> Iterator[tuple[str, str]]:
    keys = development_keys()
    for i in range(ROWS):
        p = f"P{i % PROPERTIES}"
        first17 = f"110101{1950 + i % 50}{i % 12 + 1:02d}{i % 28 + 1:02d}{i % 1000:03d}"
        number = first17 + pii.cn_id_check_char(first17)
        phone, card = f"1{3 + i % 6}{i:09d}", f"6222{i:015d}"
        sealed = [pii.sealed(keys, f, v) for f, v in
                  (("id_number", number), ("phone", phone), ("bank_card", card))]  # fmt: skip
        cells = "\t".join(f"\\\\x{enc.hex()}\t{bidx}" for enc, bidx in sealed)
        yield (
            f"T{i:08d},{p},王{i},{number},{phone},{card}\n",
            f"{org_id}\t{org_prop[p]}\t王{i}\tcn_id\t{cells}\tT{i:08d}\t2026-03-01 00:00:00+00\n",
        )


COPY_COLUMNS = {
    "units": "property_id, building_id, code, floor, area_m2, layout, base_rent_fen, status",
    "tenants": "org_id, property_id, name, id_doc_type, id_number_enc, id_number_bidx, "
    "phone_enc, phone_bidx, bank_card_enc, bank_card_bidx, external_ref, created_at",
}
HEADERS = {
    "units": "property,building,code,floor,area_m2,base_rent,layout\n",
    "tenants": "external_ref,property,name,id_number,phone,bank_card\n",
}


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def prepare(url: str, tmp: Path) -> tuple[Path, Path]:
    """An organisation with its properties and buildings, and the CSV and COPY files."""
    engine = make_engine(url)
    with engine.begin() as conn:
        org_id = conn.execute(
            text("INSERT INTO organisations (name) VALUES ('Bench') RETURNING id")
        ).scalar_one()
        org_prop, blds = {}, {}
        for p in range(PROPERTIES):
            org_prop[f"P{p}"] = conn.execute(
                text("INSERT INTO properties (org_id, name, city, address) "
                     "VALUES (:o, :n, '', '') RETURNING id"), {"o": org_id, "n": f"P{p}"}
            ).scalar_one()  # fmt: skip
            for b in range(BUILDINGS):
                blds[f"P{p}", f"B{b}"] = conn.execute(
                    text("INSERT INTO buildings (property_id, name, floors) "
                         "VALUES (:p, :n, 1) RETURNING id"), {"p": org_prop[f"P{p}"], "n": f"B{b}"}
                ).scalar_one()  # fmt: skip
    engine.dispose()
    rows = units(org_prop, blds) if KIND == "units" else tenants(org_prop, org_id)
    csv_path, copy_path = tmp / f"{KIND}.csv", tmp / f"{KIND}.copy"
    with csv_path.open("w", encoding="utf-8") as csv_file, copy_path.open("w") as copy_file:
        csv_file.write(HEADERS[KIND])
        for csv_line, copy_line in rows:
            csv_file.write(csv_line)
            copy_file.write(copy_line)
    return csv_path, copy_path


def run_import(url: str, tmp: Path, csv_path: Path) -> tuple[float, float, str]:
    """Seconds, peak RSS (MB) and the summary line of `anju cloud import` in a subprocess."""
    env = {**os.environ, "ANJU_ENV": "development", "ANJU_DATABASE_URL": url,
           "ANJU_DATA_DIR": str(tmp / "data"), "ANJU_FIELD_KEYS": ""}  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "anju", "cloud", "import", KIND, str(csv_path), "--quiet"],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"import failed ({done.returncode}): {done.stderr[-2000:]}")
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return took, peak_mb, done.stdout.strip().splitlines()[-1]


def raw_copy(url: str, copy_path: Path) -> float:
    """COPY the same rows, already in COPY's text format, into a table like the target."""
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"CREATE TABLE bench_copy (LIKE {KIND} INCLUDING ALL)")
            raw = conn.connection.driver_connection
            assert raw is not None
            started = time.perf_counter()
            with (
                raw.cursor() as cur,
                cur.copy(f"COPY bench_copy ({COPY_COLUMNS[KIND]}) FROM STDIN") as copy,
                copy_path.open("rb") as f,
            ):
                while block := f.read(1 << 20):
                    copy.write(block)
        return time.perf_counter() - started
    finally:
        engine.dispose()


def main() -> None:
    print(f"load average at start: {load()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp, scratch_schema(URL, "bench") as url:
        migrate.upgrade(url)
        started = time.perf_counter()
        csv_path, copy_path = prepare(url, Path(tmp))
        size_mb = csv_path.stat().st_size / 1e6
        print(f"{KIND}: {ROWS:,} rows, {size_mb:.1f} MB of CSV "
              f"(made in {time.perf_counter() - started:.1f} s)", flush=True)  # fmt: skip
        took, peak_mb, summary = run_import(url, Path(tmp), csv_path)
        print(f"  {summary}")
        copy_s = raw_copy(url, copy_path)
    rate, copy_rate = ROWS / took, ROWS / copy_s
    verdict = "met" if rate >= GOAL_ROWS_S and peak_mb <= GOAL_RSS_MB else "MISSED"
    print(f"  anju cloud import: {took:.1f} s = {rate:,.0f} rows/s "
          f"({size_mb / took:.2f} MB/s), peak RSS {peak_mb:.0f} MB")  # fmt: skip
    print(f"  baseline raw COPY of the same rows: {copy_s:.1f} s = {copy_rate:,.0f} rows/s; "
          f"the import takes {took / copy_s:.1f}x that (ratio {copy_s / took:.2f})")  # fmt: skip
    print(f"  goal >= {GOAL_ROWS_S:,} rows/s and <= {GOAL_RSS_MB} MB RSS: {verdict}")
    print(f"load average at end: {load()}")


if __name__ == "__main__":
    main()
