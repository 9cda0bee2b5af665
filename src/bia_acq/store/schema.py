"""Database schema as sqlite-utils migrations, one transaction each.

Tables are STRICT, foreign keys are on, timestamps are ISO-8601 UTC text and
epoch seconds side by side, units are in column names. The schema is
documented for readers in docs/analysts.md ("Database schema").
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

MIGRATION_SET = "bia_acq"
#: segments results are stored for (``bia_acq.core.estimate.RESULT_SEGMENTS``)
RESULT_SEGMENT_NAMES = ("right_arm", "left_arm", "trunk", "right_leg", "left_leg", "whole_body")
migrations = Migrations(MIGRATION_SET)


@migrations(name="m001_initial")
def m001_initial(db: Database) -> None:
    db.executescript(
        """
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

        CREATE VIEW v_measurement_wide AS
        SELECT
            m.id AS measurement_id,
            s.pseudonym AS subject_pseudonym,
            s.external_id AS subject_external_id,
            m.measured_at_utc,
            m.measured_at_epoch,
            m.device_clock,
            m.received_at_utc,
            d.model AS device_model,
            d.serial_number AS device_serial_number,
            d.port AS device_port,
            m.sex,
            m.age_years,
            m.height_cm,
            m.weight_kg,
            wb.method,
            wb.method_version,
            wb.ecw_l AS whole_body_ecw_l,
            wb.icw_l AS whole_body_icw_l,
            wb.tbw_l AS whole_body_tbw_l,
            wb.ecw_tbw_ratio AS whole_body_ecw_tbw_ratio,
            wb.classification AS whole_body_classification,
            wb.phase_angle_50khz_deg AS whole_body_phase_angle_50khz_deg,
            ra.ecw_tbw_ratio AS right_arm_ecw_tbw_ratio,
            la.ecw_tbw_ratio AS left_arm_ecw_tbw_ratio,
            tr.ecw_tbw_ratio AS trunk_ecw_tbw_ratio,
            rl.ecw_tbw_ratio AS right_leg_ecw_tbw_ratio,
            ll.ecw_tbw_ratio AS left_leg_ecw_tbw_ratio,
            m.warnings_json
        FROM measurement m
        JOIN device d ON d.id = m.device_id
        LEFT JOIN subject s ON s.id = m.subject_id
        LEFT JOIN segment_result wb
            ON wb.measurement_id = m.id AND wb.segment = 'whole_body'
            AND wb.method = (SELECT value FROM meta WHERE key = 'report_method')
            AND wb.method_version = (
                SELECT max(x.method_version) FROM segment_result x
                WHERE x.measurement_id = m.id AND x.segment = 'whole_body' AND x.method = wb.method)
        LEFT JOIN segment_result ra ON ra.measurement_id = m.id AND ra.segment = 'right_arm'
            AND ra.method = wb.method AND ra.method_version = wb.method_version
        LEFT JOIN segment_result la ON la.measurement_id = m.id AND la.segment = 'left_arm'
            AND la.method = wb.method AND la.method_version = wb.method_version
        LEFT JOIN segment_result tr ON tr.measurement_id = m.id AND tr.segment = 'trunk'
            AND tr.method = wb.method AND tr.method_version = wb.method_version
        LEFT JOIN segment_result rl ON rl.measurement_id = m.id AND rl.segment = 'right_leg'
            AND rl.method = wb.method AND rl.method_version = wb.method_version
        LEFT JOIN segment_result ll ON ll.measurement_id = m.id AND ll.segment = 'left_leg'
            AND ll.method = wb.method AND ll.method_version = wb.method_version;
        """
    )


@migrations(name="m006_worklist")
def m006_worklist(db: Database) -> None:
    """Work list for polled analyzers, folder-source cursors, magnitude-only impedance.

    * ``worklist``: subjects the operator queues for a polled analyzer (PC mode);
      the service sends each entry's settings before starting a measurement and
      links the stored measurement back to the entry.
    * ``source_file``: per folder source and file, the file's identity (device,
      inode) and how many of its bytes are journaled, so a restart resumes
      where it stopped and never ingests a row twice.
    * ``impedance.magnitude_only``: 1 where the device measured only |Z| (then
      ``r_ohm`` holds |Z| and ``x_ohm`` is NULL).
    """
    db.executescript(
        """
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
        """
    )


@migrations(name="m004_service")
def m004_service(db: Database) -> None:
    """``raw_frame.chunk_key``: the idempotency key of a received chunk.

    Every batch of chunks a reader hands to the writer gets a random key; chunk
    ``i`` is journaled as ``KEY.i``. Moving a spooled batch into the database a
    second time (after a crash mid-move) finds its keys and stores nothing twice.
    Rows journaled before this migration have no key (NULL).
    """
    db.executescript(
        """
        ALTER TABLE raw_frame ADD COLUMN chunk_key TEXT;
        CREATE UNIQUE INDEX raw_frame_chunk_key ON raw_frame (chunk_key);
        """
    )


@migrations(name="m002_reader_views")
def m002_reader_views(db: Database) -> None:
    """Readers' schema: the ``method`` table (band limits in SQL) and the edema views.

    ``method`` is filled and updated by the writer at every start from
    :data:`bia_acq.core.estimate.METHODS` (``store.db.open_writer``). The views
    read results of the method in ``meta.report_method`` (its highest stored
    version per measurement), only for measurements with a subject. Their time
    columns are ``measured_at_utc`` / ``measured_at_epoch``: the device clock in
    UTC, or the receive time when the device sent no clock. No view formats
    time (no ``strftime``): ISO-8601 text and epoch seconds are passed through.

    The views use correlated subqueries on indexed columns, not window functions:
    SQLite (3.40) cannot push a reader's ``WHERE subject_id = ?`` into a windowed
    subquery, so one subject's trend would cost a pass over every result. Measured on
    5,000 measurements (500 subjects): one subject's trend or latest rows in about
    1-2 ms, the whole of ``v_edema_latest`` in under 1 s.
    """

    pairs = " ".join(
        f"WHEN '{a}' THEN '{b}'"
        for a, b in (("right_arm", "left_arm"), ("right_leg", "left_leg"))
        for a, b in ((a, b), (b, a))
    )
    segments = ", ".join(f"('{s}')" for s in RESULT_SEGMENT_NAMES)
    db.executescript(
        f"""
        CREATE TABLE method (
            name TEXT NOT NULL,
            version TEXT NOT NULL,
            description TEXT NOT NULL,
            citation TEXT NOT NULL,
            ecw_tbw_normal_max REAL NOT NULL,
            ecw_tbw_slight_max REAL NOT NULL,
            bands_source TEXT NOT NULL,
            updated_at_utc TEXT NOT NULL,
            PRIMARY KEY (name, version)
        ) STRICT;

        CREATE VIEW v_edema_result AS
        SELECT
            m.id AS measurement_id,
            m.subject_id,
            s.pseudonym AS subject_pseudonym,
            s.external_id AS subject_external_id,
            coalesce(m.measured_at_utc, m.received_at_utc) AS measured_at_utc,
            coalesce(m.measured_at_epoch, m.received_at_epoch) AS measured_at_epoch,
            r.segment,
            r.method,
            r.method_version,
            r.ecw_l,
            r.icw_l,
            r.tbw_l,
            r.ecw_tbw_ratio,
            r.phase_angle_50khz_deg,
            r.r0_ohm,
            r.rinf_ohm,
            r.classification,
            r.fit_status,
            mt.ecw_tbw_normal_max,
            mt.ecw_tbw_slight_max
        FROM segment_result r
        JOIN measurement m ON m.id = r.measurement_id
        JOIN subject s ON s.id = m.subject_id
        LEFT JOIN method mt ON mt.name = r.method AND mt.version = r.method_version
        WHERE r.method = (SELECT value FROM meta WHERE key = 'report_method')
          AND r.method_version = (
              SELECT max(x.method_version) FROM segment_result x
              WHERE x.measurement_id = r.measurement_id AND x.segment = r.segment
                AND x.method = r.method);

        CREATE VIEW v_edema_trend AS
        SELECT
            t.subject_id, t.subject_pseudonym, t.subject_external_id, t.measurement_id,
            (SELECT count(*) FROM v_edema_result v
             WHERE v.subject_id = t.subject_id AND v.segment = t.segment
               AND (v.measured_at_epoch < t.measured_at_epoch
                    OR (v.measured_at_epoch = t.measured_at_epoch
                        AND v.measurement_id <= t.measurement_id))) AS visit_number,
            t.measured_at_utc, t.measured_at_epoch, t.segment, t.method, t.method_version,
            t.ecw_l, t.icw_l, t.tbw_l, t.ecw_tbw_ratio, t.phase_angle_50khz_deg, t.r0_ohm,
            t.classification, t.fit_status, t.ecw_tbw_normal_max, t.ecw_tbw_slight_max,
            b.measurement_id AS baseline_measurement_id,
            coalesce(bm.measured_at_utc, bm.received_at_utc) AS baseline_measured_at_utc,
            (t.measured_at_epoch - coalesce(bm.measured_at_epoch, bm.received_at_epoch))
                / 86400.0 AS days_since_baseline,
            b.ecw_tbw_ratio AS baseline_ecw_tbw_ratio,
            t.ecw_tbw_ratio - b.ecw_tbw_ratio AS ecw_tbw_ratio_change,
            t.ecw_l - b.ecw_l AS ecw_l_change,
            CASE WHEN t.segment IN ('right_arm', 'left_arm') THEN 'arms'
                 WHEN t.segment IN ('right_leg', 'left_leg') THEN 'legs' END AS limb_pair,
            o.ecw_tbw_ratio AS other_side_ecw_tbw_ratio,
            t.ecw_tbw_ratio - o.ecw_tbw_ratio AS ecw_tbw_ratio_minus_other_side,
            o.r0_ohm / t.r0_ohm AS r0_other_side_over_this,
            100.0 * (t.ecw_l - o.ecw_l) / o.ecw_l AS ecw_vs_other_side_pct
        FROM v_edema_result t
        LEFT JOIN segment_result b ON b.segment = t.segment AND b.method = t.method
            AND b.measurement_id = (
                SELECT x.measurement_id FROM v_edema_result x
                WHERE x.subject_id = t.subject_id AND x.segment = t.segment
                  AND x.ecw_tbw_ratio IS NOT NULL
                ORDER BY x.measured_at_epoch, x.measurement_id LIMIT 1)
            AND b.method_version = (
                SELECT max(y.method_version) FROM segment_result y
                WHERE y.measurement_id = b.measurement_id AND y.segment = b.segment
                  AND y.method = b.method)
        LEFT JOIN measurement bm ON bm.id = b.measurement_id
        LEFT JOIN segment_result o ON o.measurement_id = t.measurement_id
            AND o.segment = CASE t.segment {pairs} END
            AND o.method = t.method AND o.method_version = t.method_version;

        CREATE VIEW v_edema_latest AS
        SELECT
            t.subject_id, t.subject_pseudonym, t.subject_external_id, t.segment,
            t.measurement_id, t.measured_at_utc, t.measured_at_epoch,
            (SELECT count(*) FROM v_edema_result v
             WHERE v.subject_id = t.subject_id AND v.segment = t.segment
               AND v.ecw_tbw_ratio IS NOT NULL) AS visits,
            t.method, t.method_version, t.ecw_l, t.icw_l, t.tbw_l, t.ecw_tbw_ratio,
            t.ecw_tbw_normal_max, t.ecw_tbw_slight_max, t.classification,
            t.phase_angle_50khz_deg, t.baseline_measured_at_utc, t.baseline_ecw_tbw_ratio,
            t.ecw_tbw_ratio_change, t.days_since_baseline, t.limb_pair,
            t.other_side_ecw_tbw_ratio, t.ecw_tbw_ratio_minus_other_side,
            t.r0_other_side_over_this, t.ecw_vs_other_side_pct
        FROM subject s
        CROSS JOIN (VALUES {segments}) AS k
        JOIN v_edema_trend t ON t.subject_id = s.id AND t.segment = k.column1
            AND t.measurement_id = (
                SELECT x.measurement_id FROM v_edema_result x
                WHERE x.subject_id = s.id AND x.segment = k.column1
                  AND x.ecw_tbw_ratio IS NOT NULL
                ORDER BY x.measured_at_epoch DESC, x.measurement_id DESC LIMIT 1);
        """
    )


@migrations(name="m005_core")
def m005_core(db: Database) -> None:
    """Fit quality per result, the method's kind and lower band, chosen baselines.

    * ``segment_result.fit_grade`` (good, fair, poor, failed; NULL for methods
      without a Cole fit) and ``fit_flags`` (bit set, see ``bia_acq.core.fit``).
    * ``method.kind`` (``bis`` or ``regression``) and ``method.ecw_tbw_normal_min``
      (a "below normal" limit, NULL where the method has none), beside the band
      limits m002 added; the writer fills them with the bands in force.
    * ``subject_baseline``: the measurement a subject's changes are measured
      from when a clinician chose one; without a row, the subject's first
      measurement is the baseline.
    """
    db.executescript(
        """
        ALTER TABLE segment_result ADD COLUMN fit_grade TEXT;
        ALTER TABLE segment_result ADD COLUMN fit_flags INTEGER;
        ALTER TABLE method ADD COLUMN kind TEXT;
        ALTER TABLE method ADD COLUMN ecw_tbw_normal_min REAL;

        CREATE TABLE subject_baseline (
            subject_id INTEGER PRIMARY KEY REFERENCES subject (id),
            measurement_id INTEGER NOT NULL REFERENCES measurement (id),
            chosen_at_utc TEXT NOT NULL
        ) STRICT;
        """
    )
