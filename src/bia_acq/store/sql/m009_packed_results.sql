-- m009_packed_results
-- Issues 13 and 16: a smaller store, the same rows for readers.
--
-- * ``label``: every text a result row repeats (segment, method, method version,
--   classification, fit status and grade, band source, asymmetry label and the
--   computed_at_utc stamp) once, by a small integer id. Labels are never deleted.
-- * ``result``: the results, one row per measurement, segment, method and version as
--   before, with those texts as label ids (same column names, INTEGER) and the
--   numbers as they were. Its rowid orders writes (central sync pushes by it; a
--   recompute's INSERT OR REPLACE gives a replaced result a new one).
-- * ``segment_result`` is now a view over ``result`` with the old columns, in the
--   old order, and the same rows; INSERT, UPDATE and DELETE on it still work
--   (INSTEAD OF triggers). The view and its triggers are in views.sql, made from the
--   result record's columns.
-- * ``impedance`` keeps its name and columns but is stored WITHOUT ROWID: its primary
--   key is the table, with no second copy of the key in an index.
-- * ``raw_frame_sha256`` indexes only the chunks that are not frames (``kind = 'junk'``:
--   a CSV export's header line, which its rows name as ``context sha256 <hex>``): a
--   frame's hash is looked up in ``measurement`` (unique per device), so indexing every
--   frame's hash a second time cost as much as 85 bytes per row.
-- The reader views are dropped first (they read segment_result) and made again from
-- views.sql after the migrations.

DROP VIEW IF EXISTS v_edema_latest;
DROP VIEW IF EXISTS v_edema_trend;
DROP VIEW IF EXISTS v_edema_result;
DROP VIEW IF EXISTS v_measurement_wide;

CREATE TABLE label (
    id INTEGER PRIMARY KEY,
    text TEXT NOT NULL UNIQUE
) STRICT;

CREATE TABLE result (
    measurement_id INTEGER NOT NULL REFERENCES measurement (id),
    segment INTEGER NOT NULL,
    method INTEGER NOT NULL,
    method_version INTEGER NOT NULL,
    r0_ohm REAL,
    rinf_ohm REAL,
    alpha REAL,
    fc_khz REAL,
    fit_rms_ohm REAL,
    ecw_l REAL,
    icw_l REAL,
    tbw_l REAL,
    ecw_tbw_ratio REAL,
    phase_angle_50khz_deg REAL,
    classification INTEGER NOT NULL,
    fit_status INTEGER NOT NULL,
    computed_at_utc INTEGER NOT NULL,
    fit_grade INTEGER,
    fit_flags INTEGER,
    r0_low_ohm REAL,
    r0_high_ohm REAL,
    rinf_low_ohm REAL,
    rinf_high_ohm REAL,
    ecw_low_l REAL,
    ecw_high_l REAL,
    icw_low_l REAL,
    icw_high_l REAL,
    tbw_low_l REAL,
    tbw_high_l REAL,
    ecw_tbw_low REAL,
    ecw_tbw_high REAL,
    band_source INTEGER,
    asymmetry_r0_ratio REAL,
    asymmetry INTEGER,
    UNIQUE (measurement_id, segment, method, method_version)
) STRICT;

INSERT INTO label (text)
SELECT DISTINCT t FROM (
    SELECT segment AS t FROM segment_result
    UNION SELECT method FROM segment_result
    UNION SELECT method_version FROM segment_result
    UNION SELECT classification FROM segment_result
    UNION SELECT fit_status FROM segment_result
    UNION SELECT computed_at_utc FROM segment_result
    UNION SELECT fit_grade FROM segment_result
    UNION SELECT band_source FROM segment_result
    UNION SELECT asymmetry FROM segment_result
) WHERE t IS NOT NULL ORDER BY t;

-- in rowid order, so a central sync's mark keeps its order
INSERT INTO result
SELECT
    s.measurement_id,
    (SELECT id FROM label WHERE text = s.segment),
    (SELECT id FROM label WHERE text = s.method),
    (SELECT id FROM label WHERE text = s.method_version),
    s.r0_ohm, s.rinf_ohm, s.alpha, s.fc_khz, s.fit_rms_ohm, s.ecw_l, s.icw_l, s.tbw_l,
    s.ecw_tbw_ratio, s.phase_angle_50khz_deg,
    (SELECT id FROM label WHERE text = s.classification),
    (SELECT id FROM label WHERE text = s.fit_status),
    (SELECT id FROM label WHERE text = s.computed_at_utc),
    (SELECT id FROM label WHERE text = s.fit_grade),
    s.fit_flags,
    s.r0_low_ohm, s.r0_high_ohm, s.rinf_low_ohm, s.rinf_high_ohm, s.ecw_low_l, s.ecw_high_l,
    s.icw_low_l, s.icw_high_l, s.tbw_low_l, s.tbw_high_l, s.ecw_tbw_low, s.ecw_tbw_high,
    (SELECT id FROM label WHERE text = s.band_source),
    s.asymmetry_r0_ratio,
    (SELECT id FROM label WHERE text = s.asymmetry)
FROM segment_result s ORDER BY s.rowid;

DROP TABLE segment_result;

CREATE TABLE impedance_m009 (
    measurement_id INTEGER NOT NULL REFERENCES measurement (id),
    segment TEXT NOT NULL,
    freq_khz REAL NOT NULL,
    r_ohm REAL NOT NULL,
    x_ohm REAL,
    magnitude_only INTEGER NOT NULL DEFAULT 0 CHECK (magnitude_only IN (0, 1)),
    PRIMARY KEY (measurement_id, segment, freq_khz)
) STRICT, WITHOUT ROWID;
INSERT INTO impedance_m009 (measurement_id, segment, freq_khz, r_ohm, x_ohm, magnitude_only)
SELECT measurement_id, segment, freq_khz, r_ohm, x_ohm, magnitude_only FROM impedance;
DROP TABLE impedance;
ALTER TABLE impedance_m009 RENAME TO impedance;

DROP INDEX raw_frame_sha256;
CREATE INDEX raw_frame_sha256 ON raw_frame (sha256) WHERE kind = 'junk';
