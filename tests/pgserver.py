"""A throwaway PostgreSQL server on the loopback interface, a TCP proxy that cuts, and
a quick way to a site database of 10,000 measurements (``grow``).

``PgServer`` runs the distribution's ``initdb`` and ``pg_ctl`` into a fresh folder
under /tmp: as root (CI) through ``runuser`` as the ``postgres`` system user (or
``nobody``), since the server refuses to run as root. Unix socket in that folder,
TCP on 127.0.0.1 at a free port with scram passwords; fsync off (a test server).
Without a server the tests skip, unless ``BIA_ACQ_REQUIRE_POSTGRES`` is set (CI's
.ci/run sets it after installing PostgreSQL): then they fail.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import sqlite3
import struct
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest


def _bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    hits = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return hits[-1] if hits else None


def unavailable(reason: str) -> None:
    """Skip, or fail when CI requires a server."""
    if os.environ.get("BIA_ACQ_REQUIRE_POSTGRES"):
        pytest.fail(f"PostgreSQL test server: {reason}; CI requires it (.ci/run installs it)")
    pytest.skip(f"PostgreSQL test server: {reason} (apt-get install -y postgresql)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    def __init__(self) -> None:
        initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
        if initdb is None or pg_ctl is None:
            unavailable("initdb/pg_ctl not found")
        self.pg_ctl = str(pg_ctl)
        self.prefix: list[str] = []
        self.dir = Path(tempfile.mkdtemp(prefix="bia-acq-pg-"))
        if os.geteuid() == 0:
            user = next((u for u in ("postgres", "nobody") if _user_exists(u)), None)
            if user is None:
                unavailable("running as root and no postgres/nobody user to run the server")
            pw = pwd.getpwnam(str(user))
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self.prefix = ["runuser", "-u", str(user), "--"]
        self.data = self.dir / "data"
        self.port = free_port()
        self.superuser = "bia_test_admin"
        proc = subprocess.run(
            [
                *self.prefix,
                str(initdb),
                "-D",
                str(self.data),
                "-U",
                self.superuser,
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if proc.returncode != 0:
            unavailable(f"initdb failed: {proc.stderr.strip()[-500:]}")
        self.start()

    def _ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.prefix, self.pg_ctl, "-D", str(self.data), *args],
            capture_output=True,
            text=True,
            timeout=120,
        )

    def start(self) -> None:
        opts = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c full_page_writes=off -c synchronous_commit=off -c max_connections=40"
        )
        proc = self._ctl("-w", "-t", "60", "-l", str(self.dir / "log"), "-o", opts, "start")
        if proc.returncode != 0:
            log = (
                (self.dir / "log").read_text(errors="replace")[-800:]
                if (self.dir / "log").exists()
                else ""
            )
            unavailable(f"pg_ctl start failed: {proc.stderr.strip()[-300:]} {log}")

    def stop(self, mode: str = "fast") -> None:
        self._ctl("-w", "-t", "60", "-m", mode, "stop")

    def close(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)

    def admin_dsn(self, dbname: str = "postgres") -> str:
        """Superuser over the unix socket (trust)."""
        return f"host={self.dir} port={self.port} user={self.superuser} dbname={dbname}"

    def url(self, user: str, dbname: str, port: int | None = None) -> str:
        """A TCP libpq URL without password (as the sync configuration takes it)."""
        return f"postgresql://{user}@127.0.0.1:{port or self.port}/{dbname}"


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


class CuttingProxy:
    """A loopback TCP proxy to the server that can cut every connection at once.

    ``cut_after(n)``: once ``n`` more bytes went from client to server, every
    connection is reset (RST, as when a network path dies) and new ones are refused
    until ``heal()``. Threads only, bounded by the connections the test opens.
    """

    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.lock = threading.Lock()
        self.socks: list[socket.socket] = []
        self.budget: int | None = None
        self.broken = False
        self.cuts = 0
        self.closed = False
        self.threads: list[threading.Thread] = []
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self.threads.append(t)

    def cut_after(self, nbytes: int) -> None:
        with self.lock:
            self.budget = nbytes

    def heal(self) -> None:
        with self.lock:
            self.broken = False
            self.budget = None

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                if self.broken:
                    _reset(client)
                    continue
            try:
                server = socket.create_connection(self.target)
            except OSError:
                _reset(client)
                continue
            with self.lock:
                if self.closed or self.broken:
                    _reset(client)
                    _reset(server)
                    continue
                self.socks += [client, server]
            for a, b, up in ((client, server, True), (server, client, False)):
                t = threading.Thread(target=self._pump, args=(a, b, up), daemon=True)
                t.start()
                self.threads.append(t)

    def _pump(self, src: socket.socket, dst: socket.socket, upstream: bool) -> None:
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if not data:
                with contextlib.suppress(OSError):
                    dst.shutdown(socket.SHUT_WR)
                return
            if upstream:
                with self.lock:
                    if self.budget is not None:
                        self.budget -= len(data)
                        if self.budget <= 0:
                            self.budget = None
                            self.broken = True
                            self.cuts += 1
                            for s in self.socks:
                                _reset(s)
                            self.socks = []
                            return
            try:
                dst.sendall(data)
            except OSError:
                return

    def close(self) -> None:
        self.closed = True
        self.listener.close()
        with self.lock:
            for s in self.socks:
                _reset(s)
            self.socks = []
        for t in self.threads:
            t.join(timeout=5)


def _reset(s: socket.socket) -> None:
    """Abort a connection with a reset (SO_LINGER 0), waking a thread blocked on it."""
    with contextlib.suppress(OSError):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        s.shutdown(socket.SHUT_RDWR)
    s.close()


def grow(db: Path, copies: int) -> None:
    """Clone every stored measurement ``copies`` times (new frames, ids and hashes), as
    a week of measurements would add them: raw frame, measurement, impedances, results."""
    c = sqlite3.connect(db, isolation_level=None)
    c.execute("BEGIN")
    f0 = c.execute("SELECT max(id) FROM raw_frame").fetchone()[0]
    m0 = c.execute("SELECT max(id) FROM measurement").fetchone()[0]
    cols = [r[1] for r in c.execute("PRAGMA table_info(segment_result)")][1:]
    for k in range(1, copies + 1):
        c.execute(
            "INSERT INTO raw_frame (id, port, driver, kind, received_at_utc, received_at_epoch,"
            " data, sha256, status, reason, error_offset, chunk_key) SELECT id + ?, port, driver,"
            " kind, received_at_utc, received_at_epoch + ?, CAST(data || ? AS BLOB), sha256 || ?, status,"
            " reason, error_offset, NULL FROM raw_frame WHERE id <= ?",
            (k * f0, k * 600.0, f"#{k}".encode(), f"#{k}", f0),
        )
        c.execute(
            "INSERT INTO measurement SELECT id + ?, raw_frame_id + ?, device_id, subject_id,"
            " frame_sha256 || ?, device_clock, measured_at_utc, measured_at_epoch + ?,"
            " received_at_utc, received_at_epoch + ?, sex, age_years, height_cm, weight_kg,"
            " device_values_json, warnings_json FROM measurement WHERE id <= ?",
            (k * m0, k * f0, f"#{k}", k * 600.0, k * 600.0, m0),
        )
        c.execute(
            "INSERT INTO impedance SELECT measurement_id + ?, segment, freq_khz, r_ohm, x_ohm,"
            " magnitude_only FROM impedance WHERE measurement_id <= ?",
            (k * m0, m0),
        )
        c.execute(
            f"INSERT INTO segment_result (measurement_id, {', '.join(cols)})"
            f" SELECT measurement_id + ?, {', '.join(cols)} FROM segment_result"
            " WHERE measurement_id <= ?",
            (k * m0, m0),
        )
    c.execute("COMMIT")
    c.close()
