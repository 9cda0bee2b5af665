"""`bia-acq import`: captured streams through journal, decoder, core and store; idempotent."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
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
