-- m013_packed_raw_frames
-- Issue 13: the journal of received chunks packed (``raw_frame_row``), every received
-- byte kept as it was: the port's and driver's names as label ids, a frame's SHA-256 as
-- its 32 bytes (a BLOB; chunks that are not frames, whose hash rows name as
-- ``context sha256 <hex>``, keep the hex text, as do rows written before and through
-- the view), and ``received_at_utc`` only where it is not the text of its epoch.
-- ``raw_frame`` is now a view of it with the same columns and rows (INSERT, UPDATE and
-- DELETE on it still work: INSTEAD OF triggers in views.sql). Kind, status, reason and
-- chunk key stay as they were, with their indexes. Measurements reference
-- ``raw_frame_row`` (the same ids): the table is renamed first, so the reference
-- follows, then made again packed (foreign keys checked at commit, as in m011).

PRAGMA defer_foreign_keys = ON;

ALTER TABLE raw_frame RENAME TO raw_frame_row;
CREATE TEMP TABLE m013_raw_frame AS SELECT * FROM raw_frame_row;
DROP TABLE raw_frame_row;

CREATE TABLE raw_frame_row (
    id INTEGER PRIMARY KEY,
    port INTEGER NOT NULL,
    driver INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('frame', 'junk', 'truncated')),
    received_at_epoch REAL NOT NULL,
    data BLOB NOT NULL,
    sha256 ANY NOT NULL,
    status TEXT NOT NULL
        CHECK (status IN ('pending', 'decoded', 'rejected', 'duplicate', 'discarded')),
    reason TEXT,
    error_offset INTEGER,
    chunk_key TEXT,
    received_at_utc TEXT
) STRICT;

INSERT INTO label (text)
SELECT t FROM (SELECT port AS t FROM m013_raw_frame UNION SELECT driver FROM m013_raw_frame)
WHERE t NOT IN (SELECT text FROM label) ORDER BY t;

-- the epoch's text: as the view shows it (views.sql, store.schema.utc_sql)
INSERT INTO raw_frame_row (id, port, driver, kind, received_at_epoch, data, sha256, status,
    reason, error_offset, chunk_key, received_at_utc)
SELECT
    f.id, p.id, d.id, f.kind, f.received_at_epoch, f.data, f.sha256, f.status, f.reason,
    f.error_offset, f.chunk_key,
    nullif(f.received_at_utc,
        strftime('%Y-%m-%dT%H:%M:%S', CAST(f.received_at_epoch * 1000 AS INTEGER) / 1000, 'unixepoch')
        || printf('.%03dZ', CAST(f.received_at_epoch * 1000 AS INTEGER) % 1000))
FROM m013_raw_frame f
JOIN label p ON p.text = f.port
JOIN label d ON d.text = f.driver
ORDER BY f.id;

CREATE INDEX raw_frame_pending ON raw_frame_row (id) WHERE status = 'pending';
CREATE INDEX raw_frame_sha256 ON raw_frame_row (sha256) WHERE kind = 'junk';
CREATE UNIQUE INDEX raw_frame_chunk_key ON raw_frame_row (chunk_key);

DROP TABLE m013_raw_frame;
