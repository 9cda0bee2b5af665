-- m002_worklist
-- Work list for polled analyzers, folder-source cursors, magnitude-only impedance.
--
-- * ``worklist``: subjects the operator queues for a polled analyzer (PC mode);
--   the service sends each entry's settings before starting a measurement and
--   links the stored measurement back to the entry.
-- * ``source_file``: per folder source and file, the file's identity (device,
--   inode) and how many of its bytes are journaled, so a restart resumes
--   where it stopped and never ingests a row twice.
-- * ``impedance.magnitude_only``: 1 where the device measured only |Z| (then
--   ``r_ohm`` holds |Z| and ``x_ohm`` is NULL).

CREATE TABLE worklist (
    id INTEGER PRIMARY KEY,
    external_id TEXT NOT NULL,
    sex TEXT NOT NULL CHECK (sex IN ('male', 'female')),
    age_years INTEGER NOT NULL,
    height_cm REAL NOT NULL,
    body_type TEXT NOT NULL DEFAULT 'standard'
        CHECK (body_type IN ('standard', 'athletic')),
    tare_kg REAL,
    port TEXT,
    status TEXT NOT NULL DEFAULT 'waiting'
        CHECK (status IN ('waiting', 'measuring', 'done', 'failed')),
    reason TEXT,
    added_at_utc TEXT NOT NULL,
    added_at_epoch REAL NOT NULL,
    updated_at_utc TEXT NOT NULL,
    measurement_id INTEGER REFERENCES measurement (id)
) STRICT;
CREATE INDEX worklist_waiting ON worklist (id) WHERE status = 'waiting';

CREATE TABLE source_file (
    source TEXT NOT NULL,
    path TEXT NOT NULL,
    st_dev INTEGER NOT NULL,
    st_ino INTEGER NOT NULL,
    offset_bytes INTEGER NOT NULL,
    updated_at_utc TEXT NOT NULL,
    PRIMARY KEY (source, path)
) STRICT;

ALTER TABLE impedance ADD COLUMN magnitude_only INTEGER NOT NULL DEFAULT 0
    CHECK (magnitude_only IN (0, 1));
