"""Issue 11: nothing a device, a file or a disk does can stop the store or lose data.

One regression test per case of the issue, from the outside: ``bia-acq import`` and
``export`` as real processes, ``bia-acq run`` as a real process on a pty, real files
and symlinks, real SQLite files. Each bad input is one a device with a bad firmware
day or a hand-edited export can send.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import time
from pathlib import Path

from conftest import EXAMPLE_FRAME, query, run_cli
from daemon import running_service, wait_until
from ptyline import PtyLine, write_config

from bia_acq.protocols.tanita import checksum
from bia_acq.spool import spool_path

DATA = Path(__file__).parent / "data"
CSV = (DATA / "lookinbody-export.csv").read_bytes()
CSV_HEADER, CSV_ROW1, CSV_ROW2 = (line + b"\n" for line in CSV.split(b"\n")[:3])
CSV_COLUMNS = CSV_HEADER.decode().rstrip("\n").split(",")


def tanita(**fields: str) -> bytes:
    """The example MC-780 frame with some fields replaced (``None`` removes), checksum fixed."""
    body = EXAMPLE_FRAME.rstrip(b"\r\n")
    text = body[: body.rfind(b",CS,") + 1].decode()
    for key, value in fields.items():
        text, n = re.subn(rf",{key},[^,]*,", f",{key},{value},", text)
        assert n == 1, key
    data = text.encode()
    return data + b"CS," + checksum(data).encode() + b"\r\n"


def csv_row(**cells: str) -> bytes:
    """The first example row with some cells (by column name without its number) replaced."""
    names = [c.split(".", 1)[1] for c in CSV_COLUMNS]
    row = CSV_ROW1.decode().rstrip("\n").split(",")
    for name, value in cells.items():
        row[names.index(name.replace("_", " "))] = value
    return (",".join(row) + "\n").encode()


def statuses(db: Path) -> dict[str, int]:
    rows = query(db, "SELECT status, count(*) FROM raw_frame WHERE kind = 'frame' GROUP BY 1")
    return {str(s): int(n) for s, n in rows}  # type: ignore[call-overload]


def assert_all_finite(db: Path) -> None:
    """No infinity in any column (SQLite keeps ±inf; NaN it turns into NULL), and no
    NaN or Infinity in any JSON text."""
    c = sqlite3.connect(db)
    try:
        tables = [t for (t,) in c.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for t in tables:
            for _, col, *_ in c.execute(f"PRAGMA table_info({t})"):
                bad = c.execute(
                    f'SELECT count(*) FROM "{t}" WHERE (typeof("{col}") = \'real\''
                    f' AND abs("{col}") > 1.7e308) OR (typeof("{col}") = \'text\''
                    f" AND \"{col}\" GLOB '*[^A-Za-z]NaN*') OR (typeof(\"{col}\") = 'text'"
                    f" AND \"{col}\" LIKE '%Infinity%')"
                ).fetchone()[0]
                assert bad == 0, f"{t}.{col} holds a non-finite number"
    finally:
        c.close()


def do_import(tmp_path: Path, driver: str, data: bytes, *extra: str, name: str = "capture"):
    capture = tmp_path / name
    capture.write_bytes(data)
    db = tmp_path / "acq.db"
    proc = run_cli("import", "--driver", driver, "--db", str(db), str(capture), *extra)
    return proc, db


def measurements(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        return int(query(db, "SELECT count(*) FROM measurement")[0][0])  # type: ignore[call-overload]
    except sqlite3.OperationalError:
        return 0


def one_port(tmp_path: Path, line: PtyLine, db: Path) -> Path:
    """A configuration reading one MC-780 on ``line`` into ``db``."""
    port = {"name": "p1", "url": str(line.link), "driver": "tanita-mc780"}
    return write_config(tmp_path / "c.yaml", db, [port])


GOOD = [tanita(ID=f'"{n:016d}"') for n in (1, 2, 3)]


# -- 1. a frame can be rejected, never fatal ------------------------------------------------


def test_import_rejects_each_bad_tanita_frame_and_keeps_the_good_ones(tmp_path: Path) -> None:
    bad = {
        "AG": tanita(AG="99999999999999999999"),  # overflows an SQLite INTEGER
        "year 1": tanita(Da='"01/01/0001"', TI='"00:00"'),
        "year 9999": tanita(Da='"31/12/9999"', TI='"23:59"'),
        "Hm": tanita(Hm="1e308"),
        "GR": tanita(GR="1e300", HR="-1e300"),
    }
    data = GOOD[0] + b"".join(bad.values()) + GOOD[1]
    for zone in ("Pacific/Kiritimati", "America/Adak"):  # with a time zone, both sides of UTC
        proc, db = do_import(tmp_path, "tanita-mc780", data, "--timezone", zone)
        assert proc.returncode == 0, proc.stderr.decode()[-2000:]
        assert b"Traceback" not in proc.stderr
        assert statuses(db) == {"decoded": 2, "rejected": len(bad)}
        reasons = [
            str(r) for (r,) in query(db, "SELECT reason FROM raw_frame WHERE status = 'rejected'")
        ]
        assert all(reasons), reasons
        assert_all_finite(db)
        db.unlink()


def test_import_rejects_overflowing_csv_rows_and_keeps_the_good_ones(tmp_path: Path) -> None:
    nan_row = csv_row(**{"50kHz-RA Impedance": "1e200", "50kHz-RA Reactance": "1e200"})
    age_row = csv_row(Age="1e20", ID="0000000077")
    data = CSV_HEADER + CSV_ROW1 + nan_row + age_row + CSV_ROW2
    proc, db = do_import(tmp_path, "inbody-lookinbody-csv", data)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert statuses(db) == {"decoded": 2, "rejected": 2}
    reasons = sorted(
        str(r) for (r,) in query(db, "SELECT reason FROM raw_frame WHERE status = 'rejected'")
    )
    assert "Age" in reasons[0] or "age" in reasons[0], reasons
    assert "50kHz" in reasons[1] or "50 kHz" in reasons[1], reasons
    assert_all_finite(db)


def test_run_rejects_a_bad_frame_goes_on_and_recovers_it_after_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "acq.db"
    with PtyLine(tmp_path / "line") as line:
        config = one_port(tmp_path, line, db)
        with running_service(config, line=line) as run:
            line.write(tanita(AG="99999999999999999999"))
            wait_until(lambda: statuses(db).get("rejected") == 1, "the bad frame rejected")
            line.write(GOOD[0])
            wait_until(lambda: measurements(db) == 1, "the good frame after the bad one stored")
        assert run.code == 0, run.err[-2000:]
        with running_service(config, line=line) as run:  # recovery at start: the same rule
            line.write(GOOD[1])
            wait_until(lambda: measurements(db) == 2, "a frame after the restart stored")
    assert run.code == 0, run.err[-2000:]
    assert statuses(db) == {"decoded": 2, "rejected": 1}
    (reason,) = query(db, "SELECT reason FROM raw_frame WHERE status = 'rejected'")[0]
    assert "age" in str(reason).lower()


def test_a_writer_thread_that_dies_makes_run_exit_non_zero(tmp_path: Path) -> None:
    db = tmp_path / "acq.db"
    boom = (
        "import sys, bia_acq.acquire as a\n"
        "def handle(self, *b, **k):\n"
        "    raise SystemExit('simulated death of the writer thread')\n"
        "a.Ingest.handle = handle\n"
        "from bia_acq.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    with PtyLine(tmp_path / "line") as line:
        config = one_port(tmp_path, line, db)
        with running_service(config, line=line, script=boom) as run:
            line.write(GOOD[0])
            code = run.wait_exit()
    assert code not in (None, 0), run.err[-2000:]
    assert "writer" in run.err


# -- 2. constraint errors are not outages ------------------------------------------------------


def test_a_poison_row_is_rejected_and_every_port_goes_on_storing(tmp_path: Path) -> None:
    db = tmp_path / "acq.db"
    folder = tmp_path / "export"
    folder.mkdir()
    poison = csv_row(**{"50kHz-RA Impedance": "1e200", "50kHz-RA Reactance": "1e200"})
    (folder / "a.csv").write_bytes(CSV_HEADER + poison)
    with PtyLine(tmp_path / "line") as line:
        config = write_config(
            tmp_path / "c.yaml",
            db,
            [{"name": "p1", "url": str(line.link), "driver": "tanita-mc780"}],
            folders=[
                {
                    "name": "inbody",
                    "path": str(folder),
                    "driver": "inbody-lookinbody-csv",
                    "poll_seconds": 0.2,
                }
            ],
        )
        with running_service(config, line=line) as run:
            wait_until(lambda: statuses(db).get("rejected") == 1, "the poison row rejected")
            line.write(GOOD[0])
            with (folder / "a.csv").open("ab") as fh:
                fh.write(CSV_ROW2)
            wait_until(lambda: measurements(db) == 2, "both ports store after the poison row")
            assert not spool_path(db).exists()
    assert run.code == 0, run.err[-2000:]
    assert "does not take writes" not in run.err
    assert_all_finite(db)


# -- 3. plausibility before storage ------------------------------------------------------------


def test_physically_impossible_readings_are_rejected_with_the_field_named(tmp_path: Path) -> None:
    cases = {
        "height_cm": tanita(Hm="900.0"),
        "weight_kg": tanita(Wk="2000.0"),
        "age_years": tanita(AG="150"),
        "|Z|": tanita(GR="250000.0"),
        "phase": tanita(GR="10.0", HR="-80.0"),
    }
    proc, db = do_import(tmp_path, "tanita-mc780", b"".join(cases.values()) + GOOD[0])
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert statuses(db) == {"decoded": 1, "rejected": len(cases)}
    reasons = [
        str(r)
        for (r,) in query(db, "SELECT reason FROM raw_frame WHERE status = 'rejected' ORDER BY id")
    ]
    for field, reason in zip(cases, reasons, strict=True):
        assert field in reason, (field, reason)


def test_impossible_volumes_are_stored_unclassified_and_not_exported(tmp_path: Path) -> None:
    # every segment at 1/10 of its usual impedance: plausible inputs, a body of water
    # more than twice the body weight
    frame = EXAMPLE_FRAME.decode()

    def scaled(m: re.Match[str]) -> str:
        return f",{m[1]},{float(m[2]) / 10:.2f}"

    frame = re.sub(r",([GRJHXK][RLrl]),(-?[0-9.]+)(?=,)", scaled, frame)
    body = frame.encode().rstrip(b"\r\n")
    head = body[: body.rfind(b",CS,") + 1]
    data = head + b"CS," + checksum(head).encode() + b"\r\n"
    proc, db = do_import(tmp_path, "tanita-mc780", data)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    rows = query(
        db,
        "SELECT tbw_l, classification, fit_status FROM segment_result"
        " WHERE segment = 'whole_body' AND method = 'hanai-bis'",
    )
    ((_tbw, classification, status),) = rows
    # withheld: by the core (3 frequencies) or by the plausibility of the volumes
    assert classification == "not applicable" and str(status).startswith(
        ("implausible volumes", "not applicable")
    ), rows
    out = tmp_path / "out.json"
    assert run_cli("export", "--db", str(db), "--format", "fhir", "--out", str(out)).returncode == 0
    text = out.read_text()
    assert "hanai-bis" not in text  # none of its volumes goes out as a clinical value


# -- 4. pseudonyms that cannot collide -----------------------------------------------------


def test_pseudonyms_have_128_bits_and_a_collision_is_a_rejection(tmp_path: Path) -> None:
    proc, db = do_import(tmp_path, "tanita-mc780", GOOD[0])
    assert proc.returncode == 0
    ((pseudonym,),) = query(db, "SELECT pseudonym FROM subject")
    assert re.fullmatch(r"P-[0-9a-f]{32,}", str(pseudonym)), pseudonym
    # another identifier that maps to the stored pseudonym of ID ...0002 (a collision,
    # made here by hand since a real one is out of reach)
    c = sqlite3.connect(db)
    key = bytes.fromhex(
        c.execute("SELECT value FROM meta WHERE key = 'pseudonym_key'").fetchone()[0]
    )
    import hashlib
    import hmac

    full = "P-" + hmac.new(key, b"0000000000000002", hashlib.sha256).hexdigest()
    for p in {full[:34], full, full[:12]}:  # whatever length the store uses
        c.execute(
            "INSERT INTO subject (external_id, pseudonym, first_seen_utc) VALUES (?, ?, '2026')",
            (f"other-{len(p)}", p),
        )
    c.commit()
    c.close()
    proc, db = do_import(tmp_path, "tanita-mc780", GOOD[1] + GOOD[2], name="second")
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert statuses(db) == {"decoded": 2, "rejected": 1}
    ((reason,),) = query(db, "SELECT reason FROM raw_frame WHERE status = 'rejected'")
    assert "pseudonym" in str(reason) and "0000000000000002" not in str(reason)


# -- 5. files the service reads ----------------------------------------------------------------
def _folder_config(tmp_path: Path, folder: Path, **extra: object) -> Path:
    item = {
        "name": "inbody",
        "path": str(folder),
        "driver": "inbody-lookinbody-csv",
        "poll_seconds": 0.2,
        **extra,
    }
    return write_config(tmp_path / "c.yaml", tmp_path / "acq.db", [], folders=[item])


def test_the_folder_source_refuses_symlinks_and_files_outside(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    outside = tmp_path / "elsewhere.csv"
    outside.write_bytes(CSV_HEADER + CSV_ROW1)
    (folder / "link.csv").symlink_to(outside)
    (folder / "real.csv").write_bytes(CSV_HEADER + CSV_ROW2)
    db = tmp_path / "acq.db"
    with running_service(_folder_config(tmp_path, folder)) as run:
        wait_until(lambda: measurements(db) == 1, "the real file's row stored")
        wait_until(lambda: "symlink" in run.stderr(), "the symlink refused")
    assert run.code == 0, run.err[-2000:]
    assert measurements(db) == 1
    ((data,),) = query(db, "SELECT data FROM raw_frame WHERE kind = 'frame'")
    assert bytes(data) == CSV_ROW2  # type: ignore[arg-type]


def test_a_file_rewritten_in_place_is_reread_journaling_only_what_is_new(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    export = folder / "all.csv"
    export.write_bytes(CSV_HEADER + CSV_ROW1 + CSV_ROW2)
    db = tmp_path / "acq.db"
    with running_service(_folder_config(tmp_path, folder, settle_seconds=0.3)) as run:
        wait_until(lambda: measurements(db) == 2, "both rows stored")
        ino = export.stat().st_ino
        changed = CSV_ROW1.replace(b",71.4,", b",71.9,")  # weight corrected, same length
        with export.open("r+b") as fh:  # the same inode, content before the cursor changed
            fh.write(CSV_HEADER + changed + CSV_ROW2)
        assert export.stat().st_ino == ino
        wait_until(lambda: measurements(db) == 3, "the changed row stored")
    assert run.code == 0, run.err[-2000:]
    frames = [
        bytes(d)
        for (d,) in query(db, "SELECT data FROM raw_frame WHERE kind = 'frame' ORDER BY id")
    ]  # type: ignore[arg-type]
    assert frames == [CSV_ROW1, CSV_ROW2, changed]  # the header is journaled once, apart


def test_a_half_written_last_cell_is_never_stored(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    export = folder / "all.csv"
    cut = len(CSV_ROW1) - 3  # the last cell "4.6" cut to "4"
    export.write_bytes(CSV_HEADER + CSV_ROW1[:cut])
    db = tmp_path / "acq.db"
    with running_service(_folder_config(tmp_path, folder, settle_seconds=30)) as run:
        time.sleep(2.0)  # ten polls: the file is not quiet for 30 s yet
        with export.open("ab") as fh:
            fh.write(CSV_ROW1[cut:])
        time.sleep(1.0)
    assert run.code == 0, run.err[-2000:]
    assert query(db, "SELECT count(*) FROM raw_frame") == [(0,)]  # nothing taken yet
    proc = run_cli(
        "run", "--config", str(_folder_config(tmp_path, folder, settle_seconds=0.3)), "--count", "1"
    )
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    ((data,),) = query(db, "SELECT data FROM raw_frame WHERE kind = 'frame'")
    assert bytes(data) == CSV_ROW1  # type: ignore[arg-type]


# -- 6. files the service writes ---------------------------------------------------------------
def test_exports_and_reports_are_owner_only_never_through_a_symlink(tmp_path: Path) -> None:
    proc, db = do_import(tmp_path, "tanita-mc780", GOOD[0])
    assert proc.returncode == 0
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    victim.chmod(0o644)
    existing = tmp_path / "existing.csv"
    existing.write_text("old")
    existing.chmod(0o644)
    link = tmp_path / "link.csv"
    link.symlink_to(victim)
    for out in (existing, link):
        p = run_cli("export", "--db", str(db), "--format", "csv", "--out", str(out))
        assert p.returncode == 0, p.stderr.decode()
        assert not out.is_symlink() and out.stat().st_mode & 0o777 == 0o600
        assert "subject" in out.read_text()
    assert victim.read_text() == "precious" and victim.stat().st_mode & 0o777 == 0o644
    report = tmp_path / "r.html"
    report.symlink_to(victim)
    p = run_cli("report", "--db", str(db), "--subject", "0000000000000001", "--out", str(report))
    assert p.returncode == 0, p.stderr.decode()
    assert not report.is_symlink() and report.stat().st_mode & 0o777 == 0o600
    assert victim.read_text() == "precious"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # no temporary left


# -- 7. the database disappearing ----------------------------------------------------------------
def test_a_deleted_database_is_noticed_and_frames_wait_in_the_spool(tmp_path: Path) -> None:
    db = tmp_path / "acq.db"
    backup = tmp_path / "backup.db"
    with PtyLine(tmp_path / "line") as line:
        config = one_port(tmp_path, line, db)
        with running_service(config, line=line) as run:
            line.write(GOOD[0])
            wait_until(lambda: measurements(db) == 1, "the first frame stored")
            src = sqlite3.connect(db)
            dst = sqlite3.connect(backup)
            src.backup(dst)
            src.close()
            dst.close()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)
            line.write(GOOD[1])
            wait_until(lambda: spool_path(db).exists(), "the frame kept in the spool")
            time.sleep(1.0)
            assert not db.exists()  # not silently created again
            os.replace(backup, db)  # the administrator restores the database
            wait_until(lambda: measurements(db) == 2, "the spooled frame moved in")
    assert run.code == 0, run.err[-2000:]
    assert "ERROR" in run.err and "deleted" in run.err
    assert run.out.count("measurement=") == 2


# -- 8. bounded memory between readers and the writer --------------------------------------------
def test_the_queue_to_the_writer_is_bounded_in_bytes(tmp_path: Path) -> None:
    import threading

    from ptyline import make_frames

    from bia_acq.config import Config, PortConfig
    from bia_acq.drivers import get_profile
    from bia_acq.service import Service

    release = threading.Event()
    profile = get_profile("tanita-mc780")
    frames = make_frames(400, seed=3)
    with PtyLine(tmp_path / "line") as line:
        port = PortConfig("p1", str(line.link), profile.name, profile, profile.serial)
        service = Service(
            Config(database=tmp_path / "a.db", ports=(port,)),
            on_saved=lambda m: release.wait(60),  # the writer is stuck on the first frame
            queue_bytes=32_768,
        )
        service.start()
        try:
            line.wait_reader()
            sent = 0
            for f in frames:  # until the kernel buffer is full: the reader stopped reading
                try:
                    n = os.write(line.master, f)  # type: ignore[arg-type]
                except BlockingIOError:
                    break
                sent += 1
                if n < len(f):
                    break
                if sent % 20 == 0:
                    time.sleep(0.2)
                # at most the bound plus one batch (a read's frames)
                assert service.queued_bytes <= service.max_queued_bytes + 16_384
            assert sent < len(frames), "the reader never stopped reading"
        finally:
            release.set()
            service.stop()


# -- 9. configuration ----------------------------------------------------------------------
LAUGHS = "\n".join(
    ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    + ["database: acq.db", "ports: []"]
)


def test_a_billion_laughs_configuration_is_refused_in_check_config_and_at_start(
    tmp_path: Path,
) -> None:
    cfg = tmp_path / "laughs.yaml"
    cfg.write_text(LAUGHS)
    for args in (("check-config", str(cfg)), ("run", "--config", str(cfg))):
        proc = run_cli(*args, timeout=60)
        err = proc.stderr.decode()
        assert proc.returncode == 2, err
        assert err.count("\n") == 1 and "aliases expand" in err and f"{cfg}:" in err
    selfref = tmp_path / "self.yaml"
    selfref.write_text("a: &a [1, *a]\n")
    proc = run_cli("check-config", str(selfref))
    assert proc.returncode == 2 and b"refers to a value that contains it" in proc.stderr


def test_a_billion_laughs_on_sighup_keeps_the_running_configuration(tmp_path: Path) -> None:
    db = tmp_path / "acq.db"
    with PtyLine(tmp_path / "line") as line:
        config = one_port(tmp_path, line, db)
        with running_service(config, line=line) as run:
            config.write_text(LAUGHS)
            run.proc.send_signal(signal.SIGHUP)
            wait_until(lambda: "reload refused" in run.stderr(), "the reload refused")
            line.write(GOOD[0])
            wait_until(lambda: measurements(db) == 1, "a frame stored after the refused reload")
    assert run.code == 0, run.err[-2000:]
    assert "reload refused" in run.err and "aliases expand" in run.err


# -- 10. privacy in logs ---------------------------------------------------------------------
SECRET = "SECRETX4711"


def test_no_identifier_value_in_any_log_line_or_reason(tmp_path: Path) -> None:
    frames = [
        tanita(ID=SECRET),  # unquoted text where the codec expects a number or a string
        tanita(ID=f'"{SECRET}"', AG="99999999999999999999"),
        tanita(ID=f'"{SECRET}"', Hm="900.0"),
        tanita(ID=f'"{SECRET}"'),
    ]
    proc, db = do_import(tmp_path, "tanita-mc780", b"".join(frames), "--log-level", "debug")
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert SECRET not in proc.stderr.decode() + proc.stdout.decode()
    reasons = query(db, "SELECT reason FROM raw_frame WHERE reason IS NOT NULL")
    assert reasons and not [r for (r,) in reasons if SECRET in str(r)]
    assert statuses(db) == {"decoded": 1, "rejected": 3}


# -- 11. a frame with only a control prefix ------------------------------------------------------


def test_a_control_prefix_only_frame_is_not_a_measurement(tmp_path: Path) -> None:
    head = b"{0,16,~0,1,~1,1,~2,1,"
    frame = head + b"CS," + checksum(head).encode() + b"\r\n"
    proc, db = do_import(tmp_path, "tanita-mc780", frame + GOOD[0])
    assert proc.returncode == 0, proc.stderr.decode()
    assert statuses(db) == {"decoded": 1, "rejected": 1}
    ((reason,),) = query(db, "SELECT reason FROM raw_frame WHERE status = 'rejected'")
    assert "no weight and no impedance" in str(reason)
