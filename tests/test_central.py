"""The central PostgreSQL database and `bia-acq sync`, against a real server (pgserver.py).

One server for the session; every test creates its own database and site roles.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import re
import shutil
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli
from pgserver import CuttingProxy, PgServer, grow, unavailable

from bia_acq.central.config import SyncConfig

try:
    import psycopg
except ImportError:  # the [central] extra; CI installs it with [test]
    psycopg = None  # type: ignore[assignment]

SITE_GROUP = "bia_acq_site"
READER_GROUP = "bia_acq_reader"
VIEWS = ("v_edema_result", "v_edema_trend", "v_edema_latest", "v_measurement_wide")
SITE_FACTOR = 10**12


@pytest.fixture(scope="session")
def pg() -> Iterator[PgServer]:
    if psycopg is None:
        unavailable("psycopg is not installed (pip install 'bia-acq[central]')")
    server = PgServer()
    with psycopg.connect(server.admin_dsn(), autocommit=True) as c:
        for role in (SITE_GROUP, READER_GROUP):
            c.execute(f"CREATE ROLE {role} NOLOGIN")
    yield server
    server.close()


@dataclass
class Central:
    """A fresh, migrated central database on the test server."""

    pg: PgServer
    dbname: str
    folder: Path

    def admin(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.pg.admin_dsn(self.dbname), autocommit=True)

    def add_role(self, name: str, group: str) -> Path:
        """A login role in ``group`` with a random password; returns its password file."""
        password = uuid.uuid4().hex
        with self.admin() as c:
            c.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{password}' IN ROLE {group}")
        f = self.folder / f"{name}.password"
        f.write_text(password + "\n")
        f.chmod(0o600)
        return f

    def add_site(self, site: str, *, port: int | None = None, **kw: Any) -> SyncConfig:
        role = f"{self.dbname}_{site}"
        password_file = self.add_role(role, SITE_GROUP)
        with self.admin() as c:
            c.execute("INSERT INTO bia_acq.site (name, db_role) VALUES (%s, %s)", (site, role))
        return SyncConfig(
            site=site,
            url=self.pg.url(role, self.dbname, port),
            password_file=password_file,
            timeout_s=10,
            **kw,
        )

    def rows(self, query: str, *args: object) -> list[tuple[Any, ...]]:
        with self.admin() as c:
            return c.execute(query, args).fetchall()

    def count(self, table: str) -> int:
        return int(self.rows(f"SELECT count(*) FROM bia_acq.{table}")[0][0])


@pytest.fixture
def central(pg: PgServer, tmp_path: Path) -> Iterator[Central]:
    from bia_acq.central.schema import migrate

    name = f"c{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg.admin_dsn(), autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name}")
    with psycopg.connect(pg.admin_dsn(name)) as c:
        assert migrate(c) == ["001_tables", "002_simulated", "003_method_bands"]
        assert migrate(c) == []  # idempotent
    yield Central(pg, name, tmp_path)
    with psycopg.connect(pg.admin_dsn(), autocommit=True) as c:
        c.execute(f"DROP DATABASE {name} WITH (FORCE)")
        for (role,) in c.execute(
            "SELECT rolname FROM pg_roles WHERE rolname LIKE %s", (f"{name}%",)
        ).fetchall():
            c.execute(f"DROP ROLE {role}")


def site_db(clinic_db: Path, folder: Path, name: str = "site.db") -> Path:
    """A copy of the session's clinic database (the sync only reads it)."""
    path = folder / name
    shutil.copy(clinic_db, path)
    return path


def local_counts(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as c:
        return {
            t: c.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("raw_frame", "measurement", "impedance", "segment_result")
        }


def central_counts(central: Central) -> dict[str, int]:
    return {
        t: central.count(t) for t in ("raw_frame", "measurement", "impedance", "segment_result")
    }


def push(cfg: SyncConfig, db: Path, **kw: Any) -> Any:
    from bia_acq.central.sync import Pusher

    return Pusher(cfg, db, **kw).run_pass()


# -- tests ----------------------------------------------------------------------------


def test_first_sync_views_equal_sqlite_and_second_sync_sends_nothing(
    central: Central, clinic_db: Path, tmp_path: Path
) -> None:
    db = site_db(clinic_db, tmp_path)
    cfg = central.add_site("north", send_identifiers=True)
    first = push(cfg, db)
    assert first.pushed["measurement"] > 0
    assert central_counts(central) == local_counts(db)
    with sqlite3.connect(db) as c:  # this site sends identifiers: the frames' bytes too
        frames = c.execute("SELECT id, data FROM raw_frame ORDER BY id").fetchall()
    assert central.rows("SELECT id, data FROM bia_acq.raw_frame ORDER BY id") == frames
    again = push(cfg, db)
    assert again.rows == 0, again.pushed

    # the tables carry every local column (a new local column needs a central migration)
    with sqlite3.connect(db) as lc:
        for table in (
            "device",
            "raw_frame",
            "measurement",
            "impedance",
            "segment_result",
            "method",
            "subject_baseline",
        ):
            local_cols = [r[1] for r in lc.execute(f"PRAGMA table_info({table})")]
            central_cols = [
                r[0]
                for r in central.rows(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema ="
                    " 'bia_acq' AND table_name = %s AND is_generated = 'NEVER'"
                    " ORDER BY ordinal_position",
                    table,
                )
            ]
            assert central_cols == ["site", *local_cols], table

    site_no = central.rows("SELECT site_no FROM bia_acq.site WHERE name = 'north'")[0][0]
    lc = sqlite3.connect(db)
    pseudonym = dict(lc.execute("SELECT id, pseudonym FROM subject").fetchall())
    person = dict(central.rows("SELECT id, pseudonym FROM bia_acq.person"))
    for view in VIEWS:
        cur = lc.execute(f"SELECT * FROM {view}")
        local_names = [d[0] for d in cur.description]
        local_rows = cur.fetchall()
        with central.admin() as c:
            pcur = c.execute(f"SELECT * FROM bia_acq.{view}")
            names = [d.name for d in pcur.description]
            rows = pcur.fetchall()
        assert names == local_names, view
        assert len(rows) == len(local_rows) > 0, view

        def norm(row: tuple[Any, ...], names: list[str], ids: dict[int, str], central: bool):
            out = []
            for n, v in zip(names, row, strict=True):
                if n == "subject_id":
                    v = ids[v]
                elif central and v is not None and n.endswith("measurement_id"):
                    assert v // SITE_FACTOR == site_no
                    v = v % SITE_FACTOR
                out.append(v)
            return tuple(out)

        mine = sorted(norm(r, local_names, pseudonym, False) for r in local_rows)
        theirs = sorted(norm(r, names, person, True) for r in rows)
        assert theirs == mine, view
    lc.close()

    # the CLI: migrate is idempotent; sync --config once reports nothing to send
    assert (
        run_cli("central", "migrate", "--url", central.pg.admin_dsn(central.dbname)).returncode == 0
    )
    cfg_file = tmp_path / "site.yaml"
    cfg_file.write_text(
        f"database: {db}\nsync:\n  url: {cfg.url}\n  site: north\n"
        f"  password_file: {cfg.password_file}\n  send_identifiers: true\n"
    )
    proc = run_cli("sync", "--config", str(cfg_file))
    assert proc.returncode == 0, proc.stderr
    assert b"up to date: 0 row(s) pushed" in proc.stdout


def test_week_offline_catch_up_through_a_cut_connection_and_the_same_batch_twice(
    central: Central, clinic_db: Path, tmp_path: Path, pg: PgServer
) -> None:
    from bia_acq.central.sync import TRANSIENT

    db = site_db(clinic_db, tmp_path)
    grow(db, 10_000 // local_counts(db)["measurement"])
    assert local_counts(db)["measurement"] >= 10_000
    proxy = CuttingProxy(pg.port)
    try:
        cfg = central.add_site("north", port=proxy.port, batch_size=2000)

        def arm(stream: str, high: int) -> None:
            if stream == "measurement":  # cut 200 kB into the next batch's COPY
                proxy.cut_after(200_000)

        with pytest.raises(TRANSIENT):
            push(cfg, db, before_commit=arm)
        assert proxy.cuts == 1
        partial = central.count("measurement")
        assert 0 < partial < local_counts(db)["measurement"]
        with pytest.raises(TRANSIENT):  # still down: refused, nothing changes
            push(cfg, db)
        proxy.heal()
        done = push(cfg, db)
        assert done.pushed["measurement"] > 0
        assert central_counts(central) == local_counts(db)
    finally:
        proxy.close()

    # the same rows pushed twice (high-water marks forgotten) change nothing
    def snapshot() -> list[Any]:
        return [
            central.rows(f"SELECT count(*), min(ctid), max(ctid) FROM bia_acq.{t}")
            for t in ("measurement", "impedance", "segment_result")
        ]

    before = snapshot()
    central.rows("DELETE FROM bia_acq.sync_state RETURNING 1")
    direct = dataclasses.replace(
        cfg, url=pg.url(cfg.url.split("//")[1].split("@")[0], central.dbname)
    )
    assert push(direct, db).rows == 0  # every row sent again, none changed
    assert snapshot() == before


def test_server_stopped_mid_batch_then_restarted(
    central: Central, clinic_db: Path, tmp_path: Path, pg: PgServer
) -> None:
    db = site_db(clinic_db, tmp_path)
    grow(db, 20)
    cfg = central.add_site("north", batch_size=50)
    batches = []

    def stop_server(stream: str, high: int) -> None:
        if stream == "measurement":
            batches.append((stream, high))
        if stream == "measurement" and len(batches) == 3:
            pg.stop("fast")  # before this batch's commit

    try:
        with pytest.raises(psycopg.OperationalError):
            push(cfg, db, before_commit=stop_server)
    finally:
        pg.start()
    partial = central.count("measurement")
    assert 0 < partial < local_counts(db)["measurement"]
    # the interrupted batch was rolled back whole: its impedances are not there either
    assert central.count("impedance") == partial * (
        local_counts(db)["impedance"] // local_counts(db)["measurement"]
    )
    push(cfg, db)
    assert central_counts(central) == local_counts(db)


def test_a_stop_during_a_catch_up_ends_the_pass_after_the_batch_in_hand(
    central: Central, clinic_db: Path, tmp_path: Path
) -> None:
    # SIGTERM (systemd stop) during a long first sync: the pass ends at the next batch,
    # what was committed stays, and the next pass sends the rest, nothing twice
    db = site_db(clinic_db, tmp_path)
    grow(db, 20)
    cfg = central.add_site("north", batch_size=50)
    stop = threading.Event()
    batches: list[tuple[str, int]] = []

    def second_measurement_batch(stream: str, high: int) -> None:
        batches.append((stream, high))
        if [b for b, _ in batches].count("measurement") == 2:
            stop.set()  # as the signal handler does, while this batch is in hand

    first = push(cfg, db, before_commit=second_measurement_batch, stop=stop)
    assert first.stopped and first.pushed.get("segment_result", 0) == 0
    assert "segment_result" not in {b for b, _ in batches}  # nothing after the stop
    assert central.count("measurement") == 100 < local_counts(db)["measurement"]  # 2 batches
    rest = push(cfg, db)
    assert not rest.stopped and rest.pushed["segment_result"] > 0
    assert central_counts(central) == local_counts(db)


def test_two_sites_concurrently_share_subjects_by_the_group_key(
    central: Central, clinic_db: Path, tmp_path: Path
) -> None:
    from readers import fill_clinic

    key = tmp_path / "group.key"
    key.write_text(uuid.uuid4().hex + uuid.uuid4().hex)
    key.chmod(0o600)
    north = site_db(clinic_db, tmp_path, "north.db")
    south = tmp_path / "south.db"
    fill_clinic(south, seed=11)  # the same patients measured at another site
    grow(north, 3)
    grow(south, 3)
    with sqlite3.connect(north) as c:  # an export with a name column, as CSV software has
        c.execute(
            """UPDATE measurement SET device_values_json = '{"Name": "Jane Doe", "wO": 21.5}' WHERE id = 1"""
        )
    cfgs = [central.add_site(s, pseudonym_key_file=key, batch_size=20) for s in ("north", "south")]
    errors: list[BaseException] = []

    def run(cfg: SyncConfig, db: Path) -> None:
        try:
            push(cfg, db)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=a) for a in zip(cfgs, (north, south), strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    n, s = local_counts(north), local_counts(south)
    assert central_counts(central) == {k: n[k] + s[k] for k in n}
    with sqlite3.connect(north) as c:
        subjects = c.execute("SELECT count(*) FROM subject").fetchone()[0]
    # one person per patient, whichever site measured them; no patient ID left a site
    assert central.count("person") == subjects
    assert central.rows("SELECT count(*) FROM bia_acq.subject WHERE external_id IS NOT NULL") == [
        (0,)
    ]
    visits = central.rows(
        "SELECT subject_id, count(DISTINCT measurement_id / %s) FROM bia_acq.v_edema_trend"
        " WHERE segment = 'whole_body' GROUP BY subject_id",
        SITE_FACTOR,
    )
    assert len(visits) == subjects and all(sites == 2 for _, sites in visits)
    # group pseudonyms keep 128 bits of the keyed hash, as the sites' own do
    people = central.rows("SELECT pseudonym FROM bia_acq.person")
    assert people and all(re.fullmatch(r"G-[0-9a-f]{32}", p) for (p,) in people), people


def test_site_roles_are_confined_to_their_own_rows(
    central: Central, clinic_db: Path, tmp_path: Path
) -> None:
    db = site_db(clinic_db, tmp_path)
    north = central.add_site("north")
    south = central.add_site("south")
    push(north, db)
    reader_pw = central.add_role(f"{central.dbname}_reports", READER_GROUP)
    north_no = central.rows("SELECT site_no FROM bia_acq.site WHERE name = 'north'")[0][0]

    from bia_acq.central.sync import connect

    with connect(south) as c:
        c.autocommit = True
        assert c.execute("SELECT count(*) FROM measurement").fetchone() == (0,)
        assert c.execute("SELECT count(*) FROM site").fetchone() == (1,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
            c.execute(
                "INSERT INTO device (site, id, driver, port, first_seen_utc)"
                " VALUES (%s, 99, 'x', 'x', 'x')",
                (north_no,),
            )
        assert c.execute("UPDATE measurement SET sex = NULL").rowcount == 0
        assert c.execute("DELETE FROM subject_baseline").rowcount == 0
        for stmt in (
            "SELECT * FROM person",
            "SELECT * FROM meta",
            "CREATE TABLE bia_acq.mine (x int)",
            "ALTER TABLE measurement ADD COLUMN x int",
            "DROP VIEW v_edema_result",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                c.execute(stmt)
    assert central.count("measurement") == local_counts(db)["measurement"]

    reader = SyncConfig(
        site="x",
        url=central.pg.url(f"{central.dbname}_reports", central.dbname),
        password_file=reader_pw,
        timeout_s=10,
    )
    with connect(reader) as c:
        c.autocommit = True
        assert c.execute("SELECT count(*) FROM v_measurement_wide").fetchone() == (
            local_counts(db)["measurement"],
        )
        for stmt in ("SELECT * FROM measurement", "INSERT INTO meta VALUES ('a', 'b')"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                c.execute(stmt)


def test_a_recompute_on_the_pc_reaches_the_center(
    central: Central, clinic_db: Path, tmp_path: Path
) -> None:
    db = site_db(clinic_db, tmp_path)
    cfg = central.add_site("north")
    push(cfg, db)
    before = central.count("segment_result")
    proc = run_cli("recompute", "--db", str(db), "--method", "moissl-2006")
    assert proc.returncode == 0, proc.stderr
    assert push(cfg, db).pushed["segment_result"] > 0
    assert central.count("segment_result") == local_counts(db)["segment_result"] > before
    methods = central.rows("SELECT DISTINCT method FROM bia_acq.segment_result ORDER BY 1")
    assert ("moissl-2006",) in methods

    # results renumbered (as VACUUM may do to a table without an INTEGER PRIMARY KEY):
    # the row at the mark is not the one pushed, so every result is compared again
    # (the results' table is ``result`` since m009; segment_result is its view)
    with sqlite3.connect(db) as c:
        c.execute("CREATE TEMP TABLE r AS SELECT * FROM result ORDER BY rowid DESC")
        c.execute("DELETE FROM result")
        c.execute("INSERT INTO result SELECT * FROM r")
        row = c.execute(
            "SELECT measurement_id, segment, method, method_version FROM result_stream"
            " WHERE seq = 1"
        ).fetchone()
        c.execute(
            "UPDATE segment_result SET classification = 'severe' WHERE measurement_id = ?"
            " AND segment = ? AND method = ? AND method_version = ?",
            row,
        )
    assert push(cfg, db).pushed["segment_result"] == 1  # all compared, one changed
    assert central.rows(
        "SELECT classification FROM bia_acq.segment_result WHERE measurement_id = %s"
        " AND segment = %s AND method = %s AND method_version = %s",
        *row,
    ) == [("severe",)]
    assert push(cfg, db).rows == 0


def test_follow_reports_each_state_once_and_survives_a_server_restart(
    central: Central, clinic_db: Path, tmp_path: Path, pg: PgServer
) -> None:
    import os
    import queue
    import signal
    import socket
    import subprocess
    import sys
    import time

    db = site_db(clinic_db, tmp_path)
    cfg = central.add_site("north")
    cfg_file = tmp_path / "site.yaml"
    cfg_file.write_text(
        f"database: {db}\nsync:\n  url: {cfg.url}\n  site: north\n"
        f"  password_file: {cfg.password_file}\n  interval_s: 0.3\n  timeout_s: 5\n"
    )
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify"))
    notify.settimeout(0.2)
    proc = subprocess.Popen(
        [sys.executable, "-m", "bia_acq", "sync", "--config", str(cfg_file), "--follow"],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify"), "PYTHONUNBUFFERED": "1"},
    )
    lines: queue.Queue[str] = queue.Queue()
    # a daemon thread: should the process outlive the test, it must not keep pytest alive
    reader = threading.Thread(target=lambda: [lines.put(x) for x in proc.stderr or ()], daemon=True)
    reader.start()
    seen: list[str] = []
    statuses: list[str] = []

    def wait_for(text: str) -> None:
        deadline = time.monotonic() + 120  # a bound against a hang, not a speed check
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                statuses.extend(
                    m[len("STATUS=") :]
                    for m in notify.recv(4096).decode().splitlines()
                    if m.startswith("STATUS=")
                )
            try:
                line = lines.get(timeout=0.1)
            except queue.Empty:
                assert proc.poll() is None, seen
                continue
            seen.append(line)
            if text in line:
                return
        raise AssertionError(f"no {text!r} in {seen}")

    try:
        wait_for("site north: connected")
        wait_for("site north: up to date")
        grow(db, 1)  # new measurements while it follows
        wait_for("site north: catching up")
        wait_for("site north: up to date")
        assert central_counts(central) == local_counts(db)
        pg.stop("fast")
        try:
            wait_for("site north: server unreachable")
            wait_for("site north: retrying in")
        finally:
            pg.start()
        wait_for("site north: connected")
        wait_for("site north: up to date")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)  # a bound against a hang, not a speed check
        except subprocess.TimeoutExpired:
            proc.kill()  # never left running (nor its reader thread waiting on its output)
            proc.wait()
        reader.join(timeout=60)
        notify.close()
        if proc.stderr:
            proc.stderr.close()
    assert proc.returncode == 0, f"not stopped by SIGTERM within 60 s: {seen}"
    while not lines.empty():
        seen.append(lines.get())
    states = [
        x.split("site north: ")[1].split(" (")[0].strip() for x in seen if "site north: " in x
    ]
    # one line per change of state, none for the passes that found nothing to send
    assert states[0] == "connected" and states[1].startswith("catching up "), seen
    assert states[2] == "up to date", seen
    assert states.count("connected") == 2 and states.count("up to date") == 3, seen
    assert all(a != b for a, b in itertools.pairwise(states)), seen
    assert "site north: up to date" in statuses and "site north: connected" in statuses
    assert not any(cfg.password() in x for x in seen)


def test_sync_unit_reads_the_database_read_only_with_the_network() -> None:
    from test_packaging import SYSTEMD, parse_unit

    unit = parse_unit((SYSTEMD / "bia-acq-sync.service").read_text())
    one = dict(unit["Service"])
    assert one["ExecStart"].endswith("sync --config /etc/bia-acq/config.yaml --follow")
    assert one["Type"] == "notify" and one["Restart"] == "on-failure"
    assert one["User"] == "bia-acq" and one["ProtectSystem"] == "strict"
    assert not {"StateDirectory", "ReadWritePaths"} & set(one)  # nothing of it is writable
    assert "AF_INET" in one["RestrictAddressFamilies"].split()
    assert "bia-acq.service" in dict(unit["Unit"])["After"]


@pytest.mark.parametrize(
    ("sync", "where", "what"),
    [
        ("{url: 'postgresql://u:secret@h/db', site: a, password_file: pw}", "sync.url", "password"),
        ("{url: 'mysql://u@h/db', site: a, password_file: pw}", "sync.url", "postgresql://"),
        ("{url: 'postgresql://u@h/db', site: 'A b', password_file: pw}", "sync.site", "site name"),
        ("{url: 'postgresql://u@h/db', site: a}", "sync.password_file", "missing"),
        (
            "{url: 'postgresql://u@h/db', site: a, password_file: open}",
            "sync.password_file",
            "chmod 600",
        ),
        (
            "{url: 'postgresql://u@h/db', site: a, password_file: pw, sslmode: on}",
            "sync.sslmode",
            "verify-full",
        ),
        (
            "{url: 'postgresql://u@h/db', site: a, password_file: pw, pseudonym_key_file: pw}",
            "sync.pseudonym_key_file",
            "openssl rand",
        ),
        (
            "{url: 'postgresql://u@h/db', site: a, password_file: pw, batchsize: 5}",
            "sync.batchsize",
            "batch_size",
        ),
    ],
)
def test_check_config_explains_a_wrong_sync_section(
    tmp_path: Path, sync: str, where: str, what: str
) -> None:
    (tmp_path / "pw").write_text("short\n")
    (tmp_path / "pw").chmod(0o600)
    (tmp_path / "open").write_text("secret\n")
    (tmp_path / "open").chmod(0o644)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"database: x.db\nsync: {sync}\n")
    proc = run_cli("check-config", str(cfg))
    err = proc.stderr.decode()
    assert proc.returncode == 2 and len(err.splitlines()) == 1, err
    assert f"{cfg}:2: {where}:" in err and what in err, err
    assert "secret" not in err


def test_check_config_accepts_a_sync_section(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("secret\n")
    (tmp_path / "key").write_text("ab" * 32 + "\n")
    for f in ("pw", "key"):
        (tmp_path / f).chmod(0o600)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "database: x.db\nsync:\n  url: postgresql://bia_site_north@db.example.org/bia\n"
        "  site: north\n  password_file: pw\n  pseudonym_key_file: key\n  sslmode: verify-full\n"
    )
    proc = run_cli("check-config", str(cfg))
    assert proc.returncode != 2, proc.stderr  # the configuration is valid (no ports: 1)
    assert b"sync: site north to postgresql://bia_site_north@db.example.org/bia" in proc.stdout
    assert b"secret" not in proc.stdout


def test_a_new_published_result_column_reaches_the_central_table_and_views(
    central: Central, tmp_path: Path
) -> None:
    """What issue-style growth of the result record gets centrally: no central file."""
    from bia_acq.central.schema import every_run
    from bia_acq.core.estimate import PUBLISHED_COLUMNS, RESULT_COLUMNS, ResultColumn
    from bia_acq.store.db import open_writer
    from bia_acq.store.schema import VIEWS, view_statements

    extra = ResultColumn("demo_l", "REAL", published=True)
    with psycopg.connect(central.pg.admin_dsn(central.dbname)) as c:
        c.execute("SET search_path = bia_acq")
        every_run(c, (*RESULT_COLUMNS, extra))
    local = open_writer(tmp_path / "a.db")
    local.execute("ALTER TABLE result ADD COLUMN demo_l REAL")  # segment_result's table
    for name in reversed(VIEWS):
        local.execute(f"DROP VIEW {name}")
    for statement in view_statements((*PUBLISHED_COLUMNS, extra)).values():
        local.execute(statement)
    for view in (*(v for v in VIEWS if v.startswith("v_")), "segment_result"):
        mine = [r[1] for r in local.execute(f"PRAGMA table_info({view})")]
        theirs = [
            r[0]
            for r in central.rows(
                "SELECT column_name FROM information_schema.columns WHERE table_schema ="
                " 'bia_acq' AND table_name = %s ORDER BY ordinal_position",
                view,
            )
        ]
        assert theirs == (["site", *mine] if view == "segment_result" else mine), view
        assert "demo_l" in mine[-1]
    local.close()


def test_the_administrators_steps_in_docs_central_md_work_as_written(
    pg: PgServer, clinic_db: Path, tmp_path: Path
) -> None:
    """Steps 2-5 of docs/central.md, their SQL run as written (names made unique, \\password
    replaced by its SQL), the schema migrated by the non-superuser migration role."""
    import re

    doc = (Path(__file__).parent.parent / "docs" / "central.md").read_text()
    blocks = re.findall(r"```sql\n(.*?)```", doc, re.S)
    roles, site, reports = blocks[0], blocks[1], blocks[2]
    tag = f"d{uuid.uuid4().hex[:8]}"
    names = {
        "bia_migrate": f"{tag}_migrate",
        "bia_site_north": f"{tag}_north",
        "bia_reports": f"{tag}_reports",
    }
    passwords = {v: uuid.uuid4().hex for v in names.values()}

    def run_sql(text: str, dbname: str) -> None:
        for old, new in names.items():
            text = re.sub(rf"\b{old}\b", new, text)
        text = re.sub(r"\bDATABASE bia\b", f"DATABASE {tag}", text)
        text = re.sub(
            r"\\password (\w+)", lambda m: f"ALTER ROLE {m[1]} PASSWORD '{passwords[m[1]]}';", text
        )
        with psycopg.connect(pg.admin_dsn(dbname), autocommit=True) as c:
            for statement in re.sub(r"(?m)--.*$", "", text).split(";"):
                if statement.strip() and not re.match(
                    r"\s*CREATE ROLE bia_acq_\w+ NOLOGIN", statement
                ):  # made once per session
                    c.execute(statement.encode())

    def password_file(role: str) -> Path:
        f = tmp_path / role
        f.write_text(passwords[role] + "\n")
        f.chmod(0o600)
        return f

    with psycopg.connect(pg.admin_dsn(), autocommit=True) as c:
        c.execute(f"CREATE DATABASE {tag}")
    try:
        run_sql(roles, tag)
        migrate = names["bia_migrate"]
        proc = run_cli(
            "central",
            "migrate",
            "--url",
            pg.url(migrate, tag),
            "--password-file",
            str(password_file(migrate)),
        )
        assert proc.returncode == 0, proc.stderr
        assert (
            proc.stdout == b"central schema: applied 001_tables, 002_simulated, 003_method_bands\n"
        )
        run_sql(site, tag)
        run_sql(reports, tag)
        db = site_db(clinic_db, tmp_path)
        north = SyncConfig(
            site="north",
            url=pg.url(names["bia_site_north"], tag),
            password_file=password_file(names["bia_site_north"]),
        )
        push(north, db)
        with psycopg.connect(
            pg.url(names["bia_reports"], tag), password=passwords[names["bia_reports"]]
        ) as c:
            assert c.execute("SELECT count(*) FROM v_measurement_wide").fetchone() == (
                local_counts(db)["measurement"],
            )
    finally:
        with psycopg.connect(pg.admin_dsn(), autocommit=True) as c:
            c.execute(f"DROP DATABASE IF EXISTS {tag} WITH (FORCE)")
            for role in names.values():
                c.execute(f"DROP ROLE IF EXISTS {role}")


def test_report_and_export_read_the_central_database_as_they_read_a_pc_s(
    central: Central,
    clinic_db: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import csv
    import io
    import re

    from readers import RECOVERY_ID

    from bia_acq.cli import main

    db = site_db(clinic_db, tmp_path)
    push(central.add_site("north", send_identifiers=True), db)
    role = f"{central.dbname}_reports"
    monkeypatch.setenv("PGPASSWORD", central.add_role(role, READER_GROUP).read_text().strip())
    url = central.pg.url(role, central.dbname)

    def export(where: str) -> list[list[str]]:
        assert main(["export", "--db", where, "--format", "csv", "--include-identifiers"]) == 0
        rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
        # the measurement's id across sites: site 1's ids + 10**12
        return [rows[0]] + [[str(int(r[0]) % SITE_FACTOR), *r[1:]] for r in rows[1:]]

    mine, theirs = export(str(db)), export(url)
    assert len(mine) > 10 and theirs == mine

    def report(where: str, out: Path) -> str:
        assert main(["report", "--db", where, "--subject", RECOVERY_ID, "--out", str(out)]) == 0
        text = out.read_text()
        return re.sub(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d)?( ?UTC|Z)?", "T", text)

    a, b = report(str(db), tmp_path / "a.html"), report(url, tmp_path / "b.html")
    assert "ECW/TBW" in a and b == a


def test_sync_once_says_in_one_line_why_it_could_not_push(
    central: Central, clinic_db: Path, tmp_path: Path
) -> None:
    from pgserver import free_port

    db = site_db(clinic_db, tmp_path)
    stranger = central.add_role(f"{central.dbname}_east", SITE_GROUP)  # never registered
    for url, words in (
        (central.pg.url(f"{central.dbname}_east", central.dbname, free_port()), "nothing lost"),
        (central.pg.url(f"{central.dbname}_east", central.dbname), "no site for role"),
    ):
        cfg = tmp_path / "site.yaml"
        cfg.write_text(
            f"database: {db}\nsync:\n  url: {url}\n  site: east\n"
            f"  password_file: {stranger}\n  timeout_s: 5\n"
        )
        proc = run_cli("sync", "--config", str(cfg))
        err = proc.stderr.decode()
        assert proc.returncode == 1 and len(err.strip().splitlines()) == 1, err
        assert words in err and "Traceback" not in err, err
    assert central.count("measurement") == 0


def test_sync_reads_a_stopped_service_s_database_from_a_read_only_file_system(
    central: Central, tmp_path: Path
) -> None:
    """The sync unit may write nothing (ProtectSystem=strict), and pushes what a stopped
    acquisition service stored (test_readers: without the -wal and -shm it cannot)."""
    from daemon import stopped_service_database, unwritable

    site = tmp_path / "site"
    site.mkdir()
    db = site / "acq.db"
    stopped_service_database(tmp_path, db, frames=2)
    cfg = central.add_site("north")
    cfg_file = tmp_path / "site.yaml"
    cfg_file.write_text(
        f"database: {db}\nsync:\n  url: {cfg.url}\n  site: north\n"
        f"  password_file: {cfg.password_file}\n  timeout_s: 5\n"
    )
    with unwritable(site) as prefix:
        proc = run_cli("sync", "--config", str(cfg_file), prefix=prefix)
    assert proc.returncode == 0, proc.stderr.decode()
    assert central.count("measurement") == 2
    assert central_counts(central) == local_counts(db)
