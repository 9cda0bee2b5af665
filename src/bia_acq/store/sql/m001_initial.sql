-- m001_initial
-- The first schema: devices, subjects, the raw-frame journal, measurements,
-- impedances and results. (Its view v_measurement_wide is now in views.sql.)

CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE device (
    id INTEGER PRIMARY KEY,
    driver TEXT NOT NULL,
    port TEXT NOT NULL,
    model TEXT NOT NULL DEFAULT '',
    serial_number TEXT NOT NULL DEFAULT '',
    first_seen_utc TEXT NOT NULL,
    UNIQUE (driver, port, model, serial_number)
) STRICT;

CREATE TABLE subject (
    id INTEGER PRIMARY KEY,
    external_id TEXT NOT NULL UNIQUE,
    pseudonym TEXT NOT NULL UNIQUE,
    first_seen_utc TEXT NOT NULL
) STRICT;

CREATE TABLE raw_frame (
    id INTEGER PRIMARY KEY,
    port TEXT NOT NULL,
    driver TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('frame', 'junk', 'truncated')),
    received_at_utc TEXT NOT NULL,
    received_at_epoch REAL NOT NULL,
    data BLOB NOT NULL,
    sha256 TEXT NOT NULL,
    status TEXT NOT NULL
        CHECK (status IN ('pending', 'decoded', 'rejected', 'duplicate', 'discarded')),
    reason TEXT,
    error_offset INTEGER
) STRICT;
CREATE INDEX raw_frame_pending ON raw_frame (id) WHERE status = 'pending';
CREATE INDEX raw_frame_sha256 ON raw_frame (sha256);

CREATE TABLE measurement (
    id INTEGER PRIMARY KEY,
    raw_frame_id INTEGER NOT NULL REFERENCES raw_frame (id),
    device_id INTEGER NOT NULL REFERENCES device (id),
    subject_id INTEGER REFERENCES subject (id),
    frame_sha256 TEXT NOT NULL,
    device_clock TEXT,
    measured_at_utc TEXT,
    measured_at_epoch REAL,
    received_at_utc TEXT NOT NULL,
    received_at_epoch REAL NOT NULL,
    sex TEXT CHECK (sex IN ('male', 'female')),
    age_years INTEGER,
    height_cm REAL,
    weight_kg REAL,
    device_values_json TEXT NOT NULL,
    warnings_json TEXT NOT NULL,
    UNIQUE (device_id, frame_sha256)
) STRICT;
CREATE INDEX measurement_subject ON measurement (subject_id, measured_at_epoch);

CREATE TABLE impedance (
    measurement_id INTEGER NOT NULL REFERENCES measurement (id),
    segment TEXT NOT NULL,
    freq_khz REAL NOT NULL,
    r_ohm REAL NOT NULL,
    x_ohm REAL,
    PRIMARY KEY (measurement_id, segment, freq_khz)
) STRICT;

CREATE TABLE segment_result (
    measurement_id INTEGER NOT NULL REFERENCES measurement (id),
    segment TEXT NOT NULL,
    method TEXT NOT NULL,
    method_version TEXT NOT NULL,
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
    classification TEXT NOT NULL,
    fit_status TEXT NOT NULL,
    computed_at_utc TEXT NOT NULL,
    PRIMARY KEY (measurement_id, segment, method, method_version)
) STRICT;
