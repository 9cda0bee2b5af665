-- m011_packed_measurements
-- Issue 13: a smaller store, the same rows for readers (as m009 did for results).
--
-- * ``measurement_row``: the measurements, one row each as before, packed:
--   - ``device_values_json`` as ``value_keys`` (the label of its keys: a JSON array, in
--     the text's order) and ``value_list`` (its values: a JSON array, each value's text
--     as written), instead of every key again in every row; the text is kept as it is
--     (``device_values_json``) only when it is not an object of plain values;
--   - ``warnings_json`` as the label of its text where other measurements have the same
--     notes (``warnings``: the label's id), else as the text itself (notes that name a
--     measurement's own figures would otherwise be stored twice: label and its index);
--   - ``frame_sha256`` as the 32 bytes of the hash (a BLOB; rows written before and
--     rows written through the view keep the hex text: the column takes either);
--   - ``measured_at_utc`` and ``received_at_utc`` only where they are not the text of
--     their epoch (NULL otherwise: the view shows the epoch's text).
-- * ``measurement`` is now a view over ``measurement_row`` with the old columns, in the
--   old order, and the same rows; INSERT, UPDATE and DELETE on it still work (INSTEAD OF
--   triggers). The view and its triggers are in views.sql. Results, impedances, the work
--   list and baselines reference ``measurement_row`` (its ids are the measurements' ids).
--
-- How: renaming the table makes the tables that reference it follow the new name; the
-- old rows are copied aside, the table is made again in the packed layout and filled,
-- with foreign keys checked at commit (every result's measurement is there again).
-- The reader views read ``measurement`` and are dropped first; views.sql makes them again.

DROP VIEW IF EXISTS v_edema_latest;
DROP VIEW IF EXISTS v_edema_trend;
DROP VIEW IF EXISTS v_edema_result;
DROP VIEW IF EXISTS v_measurement_wide;

PRAGMA defer_foreign_keys = ON;

ALTER TABLE measurement RENAME TO measurement_row;
CREATE TEMP TABLE m011_measurement AS SELECT * FROM measurement_row;
DROP TABLE measurement_row;

CREATE TABLE measurement_row (
    id INTEGER PRIMARY KEY,
    raw_frame_id INTEGER NOT NULL REFERENCES raw_frame (id),
    device_id INTEGER NOT NULL REFERENCES device (id),
    subject_id INTEGER REFERENCES subject (id),
    frame_sha256 ANY NOT NULL,
    device_clock TEXT,
    measured_at_epoch REAL,
    received_at_epoch REAL NOT NULL,
    sex TEXT CHECK (sex IN ('male', 'female')),
    age_years INTEGER,
    height_cm REAL,
    weight_kg REAL,
    value_keys INTEGER REFERENCES label (id),
    value_list TEXT,
    warnings ANY NOT NULL,
    measured_at_utc TEXT,
    received_at_utc TEXT,
    device_values_json TEXT,
    CHECK (device_values_json IS NOT NULL OR (value_keys IS NOT NULL AND value_list IS NOT NULL)),
    UNIQUE (device_id, frame_sha256)
) STRICT;

-- an object whose values are numbers, texts, true/false or null is packed
CREATE TEMP TABLE m011_values AS
SELECT
    id,
    (SELECT json_group_array(key) FROM json_each(device_values_json)) AS keys,
    (SELECT json_group_array(json(device_values_json -> fullkey)) FROM json_each(device_values_json))
        AS vals
FROM m011_measurement
WHERE json_valid(device_values_json) AND json_type(device_values_json) = 'object'
  AND NOT EXISTS (
      SELECT 1 FROM json_each(device_values_json) WHERE type IN ('object', 'array'));

INSERT INTO label (text)
SELECT t FROM (
    SELECT keys AS t FROM m011_values
    UNION SELECT warnings_json FROM m011_measurement GROUP BY warnings_json HAVING count(*) > 1)
WHERE t NOT IN (SELECT text FROM label) ORDER BY t;

-- the epoch's text: as the view shows it (views.sql, store.schema.utc_sql)
INSERT INTO measurement_row (id, raw_frame_id, device_id, subject_id, frame_sha256, device_clock,
    measured_at_epoch, received_at_epoch, sex, age_years, height_cm, weight_kg, value_keys,
    value_list, warnings, measured_at_utc, received_at_utc, device_values_json)
SELECT
    m.id, m.raw_frame_id, m.device_id, m.subject_id, m.frame_sha256, m.device_clock,
    m.measured_at_epoch, m.received_at_epoch, m.sex, m.age_years, m.height_cm, m.weight_kg,
    (SELECT id FROM label WHERE text = v.keys),
    v.vals,
    coalesce((SELECT id FROM label WHERE text = m.warnings_json), m.warnings_json),
    nullif(m.measured_at_utc,
        strftime('%Y-%m-%dT%H:%M:%S', CAST(m.measured_at_epoch * 1000 AS INTEGER) / 1000, 'unixepoch')
        || printf('.%03dZ', CAST(m.measured_at_epoch * 1000 AS INTEGER) % 1000)),
    nullif(m.received_at_utc,
        strftime('%Y-%m-%dT%H:%M:%S', CAST(m.received_at_epoch * 1000 AS INTEGER) / 1000, 'unixepoch')
        || printf('.%03dZ', CAST(m.received_at_epoch * 1000 AS INTEGER) % 1000)),
    CASE WHEN v.id IS NULL THEN m.device_values_json END
FROM m011_measurement m
LEFT JOIN m011_values v ON v.id = m.id
ORDER BY m.id;

CREATE INDEX measurement_subject ON measurement_row (subject_id, measured_at_epoch);

DROP TABLE m011_values;
DROP TABLE m011_measurement;
