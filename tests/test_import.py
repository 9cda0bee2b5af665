"""`bia-acq import`: captured streams through journal, decoder, core and store; idempotent."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import EXAMPLE_FRAME, run_cli

from bia_acq.protocols.tanita import checksum

IMPORT = (sys.executable, "-m", "bia_acq", "import", "--driver", "tanita-mc780")


def _frame(weight: str) -> bytes:
    body = EXAMPLE_FRAME[: EXAMPLE_FRAME.rindex(b"CS,")].replace(
        b"Wk,71.4", b"Wk," + weight.encode()
    )
    return body + b"CS," + checksum(body).encode() + b"\r\n"


def capture(path: Path) -> bytes:
    good = [_frame(f"{70 + i / 10:.1f}") for i in range(5)]
    bad = good[0].replace(b"Wk,70.0", b"Wk,70.9")  # checksum no longer matches
    data = b"\x00\xffboot" + good[0] + good[1] + b"~" + bad + good[2] + good[3] + good[4]
    data += good[0][:40]  # the capture ends inside a frame
    path.write_bytes(data)
    return data


def counts(db: Path) -> dict[str, int]:
    c = sqlite3.connect(db)
    out = {
        f"{k}/{s}": n
        for k, s, n in c.execute("SELECT kind, status, count(*) FROM raw_frame GROUP BY 1, 2")
    }
    out["measurement"] = c.execute("SELECT count(*) FROM measurement").fetchone()[0]
    out["impedance"] = c.execute("SELECT count(*) FROM impedance").fetchone()[0]
    out["bytes"] = c.execute("SELECT sum(length(data)) FROM raw_frame").fetchone()[0]
    return out


def test_import_twice_stores_nothing_twice(tmp_path: Path) -> None:
    data = capture(tmp_path / "cap.bin")
    db = tmp_path / "i.db"
    first = run_cli(
        "import", "--driver", "tanita-mc780", "--db", str(db), str(tmp_path / "cap.bin")
    )
    assert first.returncode == 0, first.stderr.decode()
    assert (
        first.stdout.decode()
        .strip()
        .endswith(
            "6 frame(s): 5 stored, 0 already stored, 1 rejected, 0 already imported; "
            "2 junk and 1 truncated chunk(s) kept"
        )
    )
    after_first = counts(db)
    assert after_first == {
        "frame/decoded": 5,
        "frame/rejected": 1,
        "junk/discarded": 2,
        "truncated/discarded": 1,
        "measurement": 5,
        "impedance": 5 * 12,
        "bytes": len(data),  # every byte journaled exactly once
    }
    again = run_cli(
        "import", "--driver", "tanita-mc780", "--db", str(db), str(tmp_path / "cap.bin")
    )
    assert again.returncode == 0
    assert (
        again.stdout.decode()
        .strip()
        .endswith(  # adds up: 6 = 0 + 0 + 0 + 6
            "6 frame(s): 0 stored, 0 already stored, 0 rejected, 6 already imported; "
            "0 junk and 0 truncated chunk(s) kept, 3 already imported"
        )
    )
    assert counts(db) == after_first
    con = sqlite3.connect(db)
    reason, offset = con.execute(
        "SELECT reason, error_offset FROM raw_frame WHERE status = 'rejected'"
    ).fetchone()
    assert "checksum mismatch" in reason and offset == len(EXAMPLE_FRAME) - 4
    keys = [k for (k,) in con.execute("SELECT chunk_key FROM raw_frame ORDER BY id")]
    src = f"file:{(tmp_path / 'cap.bin').resolve()}"
    assert keys[0].startswith(f"{src}@0#") and keys[1].startswith(f"{src}@6#")
    # device clock in 2026 vs the file's time: an import is history, not a clock warning
    assert con.execute(
        "SELECT count(*) FROM measurement WHERE warnings_json LIKE '%clock%'"
    ).fetchone() == (0,)


def test_a_grown_capture_adds_only_its_tail_and_a_copy_adds_no_measurement(tmp_path: Path) -> None:
    cap = tmp_path / "cap.bin"
    capture(cap)
    db = tmp_path / "i.db"
    assert run_cli("import", "--driver", "tanita-mc780", "--db", str(db), str(cap)).returncode == 0
    with cap.open("ab") as fh:
        fh.write(_frame("80.0"))
    proc = run_cli("import", "--driver", "tanita-mc780", "--db", str(db), str(cap))
    assert "1 stored" in proc.stdout.decode(), proc.stdout
    copy = tmp_path / "copy.bin"
    copy.write_bytes(cap.read_bytes())
    proc = run_cli("import", "--driver", "tanita-mc780", "--db", str(db), str(copy), "--progress")
    out = proc.stdout.decode()
    assert "0 stored, 6 already stored" in out, out
    assert "%" in proc.stderr.decode()  # the progress bar
    assert counts(db)["measurement"] == 6


def test_import_mistakes_are_one_line(tmp_path: Path) -> None:
    proc = run_cli(
        "import", "--driver", "tanita-mc780", "--db", str(tmp_path / "x.db"), "missing.bin"
    )
    assert proc.returncode == 1 and proc.stderr.decode().count("\n") == 1
    assert "missing.bin" in proc.stderr.decode()
    proc = run_cli("import", "--driver", "nope", "--db", str(tmp_path / "x.db"), "missing.bin")
    assert proc.returncode == 2 and "known drivers" in proc.stderr.decode()


def test_two_imports_into_one_database_at_once(tmp_path: Path) -> None:
    files = []
    for k in range(2):
        f = tmp_path / f"cap{k}.bin"
        f.write_bytes(b"".join(_frame(f"{80 + k * 10 + i / 10:.1f}") for i in range(60)))
        files.append(f)
    db = tmp_path / "both.db"
    run_cli("import", "--driver", "tanita-mc780", "--db", str(db), str(files[0]), "--port", "x")
    procs = [
        subprocess.Popen(
            [*IMPORT, "--db", str(db), "--port", f"p{k}", str(f)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for k, f in enumerate(files)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e.decode()[-500:] for _, e in outs]
    con = sqlite3.connect(db)
    # 60 from the first import (port x), then file 0 again (its chunks already journaled)
    # and file 1 (60 new ones)
    assert con.execute("SELECT count(*) FROM measurement").fetchone() == (120,)
    assert con.execute("SELECT count(*) FROM raw_frame").fetchone() == (120,)


def test_a_database_that_takes_no_writes_stops_the_import_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Another program holds the write lock past the import's wait: one line, exit 1, no
    traceback; the same import run again afterwards stores everything."""
    from bia_acq import cli
    from bia_acq.commands import import_

    capture = tmp_path / "capture.bin"
    capture.write_bytes(EXAMPLE_FRAME * 3)
    db = tmp_path / "clinic.db"
    assert cli.main(["import", "--driver", "tanita-mc780", "--db", str(db), str(capture)]) == 0
    capture.write_bytes(EXAMPLE_FRAME * 3 + b"junk\r\n" + _frame("72.9"))
    monkeypatch.setattr(import_, "LOCK_WAIT_MS", 200)
    holder = sqlite3.connect(db, isolation_level=None)
    real_import_file = import_.import_file

    def lock_then_import(*args: object) -> object:  # the lock is taken after the open
        holder.execute("BEGIN IMMEDIATE")
        return real_import_file(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(import_, "import_file", lock_then_import)
    try:
        capsys.readouterr()
        code = cli.main(["import", "--driver", "tanita-mc780", "--db", str(db), str(capture)])
    finally:
        if holder.in_transaction:
            holder.execute("ROLLBACK")
        holder.close()
    err = capsys.readouterr().err
    assert code == 1, err
    assert "does not take writes" in err and "Traceback" not in err, err
    assert len([x for x in err.splitlines() if "does not take writes" in x]) == 1, err
    proc = run_cli("import", "--driver", "tanita-mc780", "--db", str(db), str(capture))
    assert proc.returncode == 0, proc.stderr
    assert b"1 stored" in proc.stdout, proc.stdout


# -- a large import: a worker process decodes and computes (bia_acq.worker) -----------------


def _many(n: int) -> bytes:
    """A capture of ``n`` distinct MC-780 frames (over 1 MiB from 2,500: a worker process
    decodes them), a rejected frame and junk among them."""
    body = EXAMPLE_FRAME[: EXAMPLE_FRAME.rindex(b"CS,")]
    out = []
    for k in range(n):
        b = body.replace(b'TI,"09:41"', b'TI,"%02d:%02d"' % (k // 60 % 24, k % 60))
        b = b.replace(
            b'Da,"03/11/2026"', b'Da,"%02d/%02d/2026"' % (1 + k // 1440 % 28, 1 + k // 40320)
        )
        b = b.replace(b"Wk,71.4", b"Wk,%.1f" % (50 + k % 500 / 10))
        out.append(b + b"CS," + checksum(b).encode() + b"\r\n")
    out[n // 3] = out[n // 3].replace(b"Wk,", b"Wk,1")  # its checksum no longer matches
    out[n // 2] += b"\x00line noise"
    return b"".join(out)


def _rows(db: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every table's rows, without the columns that differ between two databases of the
    same frames (times of writing, pseudonyms made with each database's own key)."""
    volatile = {"computed_at_utc", "first_seen_utc", "updated_at_utc", "pseudonym"}
    con = sqlite3.connect(db)
    out = {}
    for (table,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
        if table in ("meta", "_sqlite_migrations"):
            continue
        cols = [c[1] for c in con.execute(f"PRAGMA table_info({table})") if c[1] not in volatile]
        out[table] = con.execute(f"SELECT {', '.join(cols)} FROM {table} ORDER BY 1").fetchall()
    con.close()
    # a result's computed_at_utc is stored as a label (m009): a time of writing too
    out["label"] = [r for r in out.get("label", []) if not re.match(r"\d{4}-\d\d-\d\dT", r[1])]
    return out


def _import(worker: bool) -> list[str]:
    """``bia-acq import`` as a real process, with a worker process or all in one whatever
    the machine's load (commands.import_.worker_pays)."""
    code = (
        "import sys\nfrom bia_acq.commands import import_\n"
        f"import_.WORKER = {worker}\nfrom bia_acq.cli import main\n"
        "sys.exit(main(['import', *sys.argv[1:]]))\n"
    )
    return [sys.executable, "-c", code]


def test_a_large_import_computes_in_a_worker_process_with_the_same_results(
    tmp_path: Path,
) -> None:
    cap = tmp_path / "big.bin"
    cap.write_bytes(_many(2600))
    args = ["--driver", "tanita-mc780", "--log-level", "info"]
    runs = [
        subprocess.run(
            [*_import(w), *args, "--db", str(tmp_path / f"{w}.db"), str(cap)],
            capture_output=True,
            timeout=300,
        )
        for w in (True, False)
    ]
    for p in runs:
        assert p.returncode == 0, p.stderr.decode()[-2000:]
        summary = "2600 frame(s): 2599 stored, 0 already stored, 1 rejected, 0 already imported"
        assert summary in p.stdout.decode()
    assert "decoded and computed in worker process" in runs[0].stderr.decode()
    assert "worker process" not in runs[1].stderr.decode()
    rows = _rows(tmp_path / "True.db")
    assert len(rows["raw_frame"]) == 2601 and rows["result"]
    assert rows == _rows(tmp_path / "False.db")


def test_a_worker_process_only_where_it_pays(monkeypatch: pytest.MonkeyPatch) -> None:
    from bia_acq.commands import import_

    monkeypatch.setattr(import_.os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(import_.os, "getloadavg", lambda: (0.3, 0.3, 0.3))
    assert import_.worker_pays(2 << 20) and not import_.worker_pays(100_000)
    monkeypatch.setattr(import_.os, "getloadavg", lambda: (2.5, 0.3, 0.3))  # cores busy
    assert not import_.worker_pays(2 << 20)
    monkeypatch.setattr(import_.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    monkeypatch.setattr(import_.os, "sched_getaffinity", lambda pid: {0})  # one core
    assert not import_.worker_pays(2 << 20)


CRASH_PLUGIN = '''
import os
import signal

from bia_acq.protocols.tanita import TanitaProtocol


class CrashOnce(TanitaProtocol):
    """Tanita, except that its process dies (as by the OOM killer or a crashing C
    extension) on the frame weighing 99.9 kg, while the file CRASH_ONCE names exists."""

    name = "tanita-crash-once"

    def decode(self, frame):
        if b"Wk,99.9" in frame and os.path.exists(os.environ["CRASH_ONCE"]):
            os.unlink(os.environ["CRASH_ONCE"])
            os.kill(os.getpid(), signal.SIGKILL)
        return super().decode(frame)
'''


def test_a_worker_that_dies_stops_the_import_in_one_line_and_nothing_read_is_lost(
    tmp_path: Path,
) -> None:
    site = tmp_path / "site"
    (site / "crash_once").mkdir(parents=True)
    (site / "crash_once" / "__init__.py").write_text(CRASH_PLUGIN)
    info = site / "crash_once-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: crash-once\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[bia_acq.protocols]\ntanita-crash-once = crash_once:CrashOnce\n"
    )
    drivers = tmp_path / "drivers"
    drivers.mkdir()
    mc780 = (Path(__file__).parents[1] / "drivers" / "tanita-mc780.yaml").read_text()
    (drivers / "crash-mc780.yaml").write_text(
        mc780.replace("name: tanita-mc780", "name: crash-mc780").replace(
            "protocol: tanita", "protocol: tanita-crash-once"
        )
    )
    cap = tmp_path / "big.bin"
    cap.write_bytes(_many(2600))  # the frame of 99.9 kg: number 499, in the first batch
    marker = tmp_path / "crash-once"
    marker.touch()
    env = {**os.environ, "PYTHONPATH": str(site), "CRASH_ONCE": str(marker)}
    db = tmp_path / "i.db"
    cmd = [
        *_import(True),
        "--driver",
        "crash-mc780",
        "--drivers-dir",
        str(drivers),
        "--db",
        str(db),
    ]
    proc = subprocess.run([*cmd, str(cap)], capture_output=True, env=env, timeout=300)
    err = proc.stderr.decode()
    assert proc.returncode == 1, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert "worker process" in err and "killed by signal 9" in err, err
    assert "run the same import again" in err, err
    con = sqlite3.connect(db)
    journaled = con.execute("SELECT count(*) FROM raw_frame WHERE kind = 'frame'").fetchone()[0]
    assert journaled >= 1000  # the batch the worker had, and what was read after it
    assert con.execute("SELECT count(*) FROM measurement").fetchone() == (0,)
    con.close()
    again = subprocess.run([*cmd, str(cap)], capture_output=True, env=env, timeout=300)
    assert again.returncode == 0, again.stderr.decode()[-2000:]
    assert counts(db)["frame/decoded"] == 2599 and counts(db)["frame/rejected"] == 1
    assert counts(db)["measurement"] == 2599


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_ends_a_large_import_and_its_worker_cleanly(
    tmp_path: Path, signum: signal.Signals
) -> None:
    """The signal reaches the whole process group (a terminal's Ctrl-C, systemd's stop):
    every process of it ends, without a traceback; the same import run again finishes."""
    cap = tmp_path / "big.bin"
    cap.write_bytes(_many(6000))
    db = tmp_path / "i.db"
    cmd = [*_import(True), "--driver", "tanita-mc780", "--db", str(db), str(cap)]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        until = time.monotonic() + 120  # a bound against a hang, not a speed check
        while _stored(db) == 0:
            assert proc.poll() is None and time.monotonic() < until
            time.sleep(0.02)
        os.killpg(proc.pid, signum)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode in (130, -signum), err.decode()[-2000:]
    assert b"Traceback" not in err, err.decode()[-2000:]
    until = time.monotonic() + 60
    while True:  # the worker (and any helper process) ends too
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        assert time.monotonic() < until, "a process of the import is left running"
        time.sleep(0.05)
    assert 0 < _stored(db) < 5999
    again = subprocess.run(cmd, capture_output=True, timeout=300)
    assert again.returncode == 0, again.stderr.decode()[-2000:]
    assert counts(db)["measurement"] == 5999 and counts(db)["frame/decoded"] == 5999


def _stored(db: Path) -> int:
    """Measurements in ``db`` as a reader sees them (0 while it does not exist yet)."""
    if not db.exists():
        return 0
    con = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)
    try:
        return int(con.execute("SELECT count(*) FROM measurement").fetchone()[0])
    except sqlite3.OperationalError:  # not created yet
        return 0
    finally:
        con.close()
