"""Security and privacy: file modes, the reporting group, the new keys' checks, and logs
free of patient identifiers at every level."""

from __future__ import annotations

import grp
import os
import sqlite3
import stat
from pathlib import Path

import pytest
from conftest import query, run_cli
from daemon import running_service, wait_until
from ptyline import PtyLine, make_frames, write_config

from bia_acq.config import load_config
from bia_acq.errors import ConfigError
from bia_acq.store.db import open_writer


def test_database_owner_only_or_group_read_only(tmp_path: Path) -> None:
    open_writer(tmp_path / "a.db").close()
    assert stat.S_IMODE((tmp_path / "a.db").stat().st_mode) == 0o600
    group = grp.getgrgid(os.getgid()).gr_name
    db = open_writer(tmp_path / "b.db", group=group)
    db.execute("CREATE TABLE t (x)")  # the WAL takes the database's mode
    for name in ("b.db", "b.db-wal"):
        st = (tmp_path / name).stat()
        assert stat.S_IMODE(st.st_mode) == 0o640 and st.st_gid == grp.getgrnam(group).gr_gid
    db.close()
    open_writer(tmp_path / "b.db").close()  # the key removed: back to owner-only
    assert stat.S_IMODE((tmp_path / "b.db").stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("database_group: no-such-group-bia\n", "database_group"),
        ("ports:\n  - {url: /dev/ttyUSB0, driver: tanita-mc780, silence_s: 0}\n", "silence_s"),
        ("ports:\n  - {url: /dev/ttyUSB0, driver: tanita-mc780, silence_s: soon}\n", "silence_s"),
    ],
)
def test_new_keys_are_checked(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=key):
        load_config(path)


def test_world_writable_configuration_is_refused(tmp_path: Path) -> None:
    path = write_config(tmp_path / "c.yaml", tmp_path / "a.db", [])
    path.chmod(0o666)
    proc = run_cli("run", "--config", str(path), "--duration", "1")
    assert proc.returncode == 2 and b"world-writable" in proc.stderr


def test_no_patient_identifier_in_any_log_line(tmp_path: Path) -> None:
    """A full run at DEBUG, with decoded, rejected, truncated and duplicate frames."""
    frames = make_frames(4, seed=8)
    bad = frames[1].replace(b"Wk,", b"Wk,9", 1)  # checksum no longer matches
    with PtyLine(tmp_path / "line") as line:
        config = write_config(
            tmp_path / "c.yaml",
            tmp_path / "a.db",
            [{"name": "p1", "url": str(line.link), "driver": "tanita-mc780", "silence_s": 0.3}],
            log_level="debug",
        )
        with running_service(config, "--count", "3", line=line) as run:
            for data in (frames[0], bad, frames[0], frames[2][:300]):
                line.write(data)
            discarded = "SELECT count(*) FROM raw_frame WHERE status = 'discarded'"
            wait_until(lambda: query(tmp_path / "a.db", discarded) == [(1,)], "the partial stale")
            line.write(frames[3] + frames[2])
            run.wait_exit()  # --count 3: it stops by itself
    assert run.code == 0, run.err[-2000:]
    db = sqlite3.connect(tmp_path / "a.db")
    ids = [i for (i,) in db.execute("SELECT external_id FROM subject")]
    names = {r for (r,) in db.execute("SELECT status FROM raw_frame")}
    db.close()
    assert len(ids) >= 2 and {"decoded", "rejected", "duplicate", "discarded"} <= names
    log = run.err
    assert "DEBUG" in log and "rejected" in log
    for ext in ids:
        assert ext not in log and ext not in run.out
