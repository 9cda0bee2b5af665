"""Sync benchmark: a week offline (10,000 measurements) caught up into a local PostgreSQL.

Run: ``python bench/sync.py [--measurements 10000] [--batch 5000] [--url URL]``

The site database holds real Tanita MC-780 frames from the simulator, stored through
codec, core and store (``Ingest``), the results of one method (hanai-bis) kept, and
its measurements cloned with new frames and ids up to ``--measurements``
(tests/pgserver.py, ``grow``). The server is a throwaway one on 127.0.0.1 (tests/pgserver.py: fsync off,
as a test server; a production server's commit costs more) unless ``--url`` names a
superuser connection to use (a database ``bia_bench_<random>`` is created and dropped).

Printed: the catch-up (rows/s, measurements/s, seconds), a second pass over unchanged
data (seconds), and a baseline measured in the same run on the same server: one INSERT
per round trip, the way a naive sync would send rows.

Targets (issue 14): at least 5,000 measurements/s; the second pass under 1 s.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import machine
import psycopg
from pgserver import PgServer, grow
from ptyline import make_frames

from bia_acq.acquire import Batch, Ingest
from bia_acq.central.config import SyncConfig
from bia_acq.central.schema import migrate
from bia_acq.central.sync import Pusher
from bia_acq.config import PortConfig
from bia_acq.drivers import get_profile
from bia_acq.protocols.base import Chunk
from bia_acq.store.db import open_writer
from bia_acq.store.writer import Store

METHOD = "hanai-bis"


def fill(path: Path, frames: int = 20) -> None:
    """Real MC-780 frames through the real ingest path; results of METHOD only."""
    profile = get_profile("tanita-mc780")
    store = Store(open_writer(path, report_method=METHOD))
    ingest = Ingest(store, METHOD)
    ingest.add_port(PortConfig("ward-3", "loop://", profile.name, profile, profile.serial, "UTC"))
    chunks = [Chunk("frame", f) for f in make_frames(frames)]
    ingest.handle(Batch("ward-3", profile.name, chunks, time.time()))
    with store.db.atomic():
        store.conn.execute("DELETE FROM segment_result WHERE method <> ?", (METHOD,))
    store.db.close()


def server_cpu_s(server: PgServer | None) -> float:
    """CPU seconds of the test server's processes so far: the postmaster with its reaped
    children (the backends that ended) plus the live ones (Linux /proc)."""
    if server is None:
        return float("nan")
    tick = os.sysconf("SC_CLK_TCK")
    pid = int((server.data / "postmaster.pid").read_text().split()[0])
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    total = sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        with contextlib.suppress(OSError):
            f = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(f[11]) + int(f[12])
    return total / tick


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--measurements", type=int, default=10_000)
    ap.add_argument("--batch", type=int, default=5000, help="sync.batch_size")
    ap.add_argument("--url", help="superuser libpq URL of an existing server (default: own)")
    args = ap.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="bia-acq-bench-sync-"))
    server = None if args.url else PgServer()
    admin = args.url or server.admin_dsn()  # type: ignore[union-attr]
    dbname = f"bia_bench_{uuid.uuid4().hex[:8]}"
    try:
        db = folder / "site.db"
        fill(db)
        with sqlite3.connect(db) as c:
            n0 = c.execute("SELECT count(*) FROM measurement").fetchone()[0]
        grow(db, -(-args.measurements // n0) - 1)
        with sqlite3.connect(db) as c:
            counts = {
                t: c.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("measurement", "impedance", "segment_result", "raw_frame")
            }

        with psycopg.connect(admin, autocommit=True) as c:
            for role in ("bia_acq_site", "bia_acq_reader"):
                if not c.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                    c.execute(f"CREATE ROLE {role} NOLOGIN")
            c.execute(f"CREATE DATABASE {dbname}")
            c.execute(f"CREATE ROLE {dbname}_site LOGIN PASSWORD 'bench' IN ROLE bia_acq_site")
        info = psycopg.conninfo.conninfo_to_dict(admin)
        info["dbname"] = dbname
        db_admin = psycopg.conninfo.make_conninfo(**info)  # type: ignore[arg-type]
        with psycopg.connect(db_admin) as c:
            migrate(c)
            c.execute(
                "INSERT INTO bia_acq.site (name, db_role) VALUES ('bench', %s)", (f"{dbname}_site",)
            )
        pw = folder / "pw"
        pw.write_text("bench\n")
        pw.chmod(0o600)
        host = "127.0.0.1"
        port = server.port if server else int(info.get("port") or 5432)
        cfg = SyncConfig(
            site="bench",
            url=f"postgresql://{dbname}_site@{host}:{port}/{dbname}",
            password_file=pw,
            batch_size=args.batch,
        )

        cpu0, srv0 = time.process_time(), server_cpu_s(server)
        first = Pusher(cfg, db).run_pass()
        time.sleep(0.5)  # the backend exits and is reaped: its CPU time joins the postmaster's
        cpu, srv = time.process_time() - cpu0, server_cpu_s(server) - srv0
        passes = 20
        cpu0, srv0 = time.process_time(), server_cpu_s(server)
        second = Pusher(cfg, db).run_pass()
        assert second.rows == 0, second.pushed
        for _ in range(passes - 1):
            Pusher(cfg, db).run_pass()
        time.sleep(0.5)
        idle_cpu = (time.process_time() - cpu0) / passes
        idle_srv = (server_cpu_s(server) - srv0) / passes

        # baseline: one INSERT per round trip (what a row-at-a-time sync does)
        with sqlite3.connect(db) as c:
            sample = c.execute(
                "SELECT measurement_id, segment, freq_khz, r_ohm, x_ohm FROM impedance LIMIT 3000"
            ).fetchall()
        with psycopg.connect(db_admin) as c:
            c.execute(
                "CREATE TEMP TABLE b (m bigint, s text, f float8, r float8, x float8,"
                " PRIMARY KEY (m, s, f))"
            )
            t0 = time.perf_counter()
            for row in sample:
                c.execute("INSERT INTO b VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING", row)
            base_s = time.perf_counter() - t0
        base_rate = len(sample) / base_s

        m = counts["measurement"]
        rate = first.rows / first.seconds
        print(machine.header())
        print(
            f"site database: {m} measurements, {counts['impedance']} impedances, "
            f"{counts['segment_result']} results ({METHOD}), {counts['raw_frame']} raw frames"
        )
        print(
            f"catch-up: {first.rows} rows in {first.seconds:.2f} s = {rate:,.0f} rows/s, "
            f"{m / first.seconds:,.0f} measurements/s (batches of {args.batch}; target >= 5,000)"
        )
        print(
            f"  CPU: sync process {cpu:.2f} s, server {srv:.2f} s: "
            f"{m / (cpu + srv):,.0f} measurements per CPU-second ({machine.load()})"
        )
        print(f"second pass, unchanged data: {second.seconds:.3f} s (target < 1 s)")
        print(
            f"  per pass over unchanged data (mean of {passes}; connection and password "
            f"check included): CPU sync {idle_cpu * 1e3:.0f} ms, server {idle_srv * 1e3:.0f} ms"
        )
        print(
            f"baseline, one INSERT per round trip: {base_rate:,.0f} rows/s; "
            f"catch-up / baseline = {rate / base_rate:.1f}x"
        )
        with psycopg.connect(db_admin) as c:
            size = c.execute("SELECT pg_database_size(current_database())").fetchone()[0]
        print(
            f"central database size: {size / 1e6:.0f} MB ({size / m / 1e3:.1f} kB per measurement)"
        )
    finally:
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
            c.execute(f"DROP ROLE IF EXISTS {dbname}_site")
        if server is not None:
            server.close()
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
