-- m012_packed_impedance
-- Issue 13: the impedance points with their segment as a label id (``impedance_row``),
-- instead of the segment's name again in every point and in its key; ``impedance`` is
-- now a view of it with the same columns and rows (and INSTEAD OF triggers: INSERT,
-- UPDATE and DELETE on it still work; views.sql). Stored WITHOUT ROWID as before: the
-- primary key (measurement, segment, frequency) is the table.

CREATE TABLE impedance_row (
    measurement_id INTEGER NOT NULL REFERENCES measurement_row (id),
    segment INTEGER NOT NULL,
    freq_khz REAL NOT NULL,
    r_ohm REAL NOT NULL,
    x_ohm REAL,
    magnitude_only INTEGER NOT NULL DEFAULT 0 CHECK (magnitude_only IN (0, 1)),
    PRIMARY KEY (measurement_id, segment, freq_khz)
) STRICT, WITHOUT ROWID;

INSERT INTO label (text)
SELECT DISTINCT segment FROM impedance WHERE segment NOT IN (SELECT text FROM label)
ORDER BY segment;

INSERT INTO impedance_row (measurement_id, segment, freq_khz, r_ohm, x_ohm, magnitude_only)
SELECT i.measurement_id, l.id, i.freq_khz, i.r_ohm, i.x_ohm, i.magnitude_only
FROM impedance i JOIN label l ON l.text = i.segment
ORDER BY i.measurement_id, l.id, i.freq_khz;

DROP TABLE impedance;
