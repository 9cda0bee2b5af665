-- The reader views, made from the current code: store.schema.apply_views creates
-- them after the migrations and makes them again whenever this text (with its
-- $$placeholders filled) differs from what the database holds. Views hold no data,
-- so they are not migrated: a change here is the whole change.
--
-- They read results of the method in meta.report_method (its highest stored
-- version per measurement); the edema views only measurements with a subject.
-- Their time columns are measured_at_utc / measured_at_epoch: the device clock in
-- UTC, or the receive time when the device sent no clock. No view formats time
-- (no strftime): ISO-8601 text and epoch seconds are passed through.
--
-- The edema views use correlated subqueries on indexed columns, not window
-- functions: SQLite (3.40) cannot push a reader's WHERE subject_id = ? into a
-- windowed subquery, so one subject's trend would cost a pass over every result.
-- Measured on 5,000 measurements (500 subjects): one subject's trend or latest rows
-- in about 1-2 ms, the whole of v_edema_latest in under 1 s.
--
-- ``segment_result`` (a view since m009) shows the table ``result`` with its label ids
-- as the texts they stand for, in the old table's column order; ``result_stream`` is the
-- same with ``result``'s rowid as ``seq`` (central sync's position). Writes to
-- segment_result go to ``result`` by the INSTEAD OF triggers, which add missing labels.
-- Their column lists come from the result record (bia_acq.core.estimate.RESULT_COLUMNS):
-- $$result_select, $$result_names, $$new_values, $$new_labels, $$set_new, $$old_key.
--
-- ``measurement`` (a view since m011) shows the table ``measurement_row`` with the old
-- columns in the old order: the device values' text made again from its keys (a label)
-- and values (each value's text as written), the warnings' text (or its label), the
-- hash as hex, the times' text from their epochs where the row holds no text of its own
-- ($$measured_utc, $$received_utc: store.schema.utc_sql; m011 and the writer store a
-- text only where it differs from that). Writes go to measurement_row by its INSTEAD OF
-- triggers, which keep the texts they are given as they are.
--
-- ``impedance`` (a view since m012) shows ``impedance_row`` with its segment's label
-- as the segment's name; its triggers add a new name to ``label``.
--
-- Placeholders (string.Template): $$pairs (limb pairs), $$segments (result
-- segments), and per view the published result columns of the result record
-- (bia_acq.core.estimate.PUBLISHED_COLUMNS), appended at the end:
-- $$wide_extra (whole_body_<column>), $$result_extra, $$trend_extra, $$latest_extra.
-- Statements are separated by a line holding only ";".

CREATE VIEW measurement AS
SELECT
    m.id,
    m.raw_frame_id,
    m.device_id,
    m.subject_id,
    CASE WHEN typeof(m.frame_sha256) = 'blob' THEN lower(hex(m.frame_sha256))
        ELSE m.frame_sha256 END AS frame_sha256,
    m.device_clock,
    coalesce(m.measured_at_utc, $measured_utc) AS measured_at_utc,
    m.measured_at_epoch,
    coalesce(m.received_at_utc, $received_utc) AS received_at_utc,
    m.received_at_epoch,
    m.sex,
    m.age_years,
    m.height_cm,
    m.weight_kg,
    coalesce(m.device_values_json, '{' || coalesce((
        SELECT group_concat((k.text -> v.fullkey) || ': ' || (m.value_list -> v.fullkey), ', ')
        FROM label k, json_each(m.value_list) v WHERE k.id = m.value_keys), '') || '}')
        AS device_values_json,
    CASE WHEN typeof(m.warnings) = 'integer' THEN (SELECT text FROM label WHERE id = m.warnings)
        ELSE m.warnings END AS warnings_json
FROM measurement_row m
;

CREATE TRIGGER measurement_insert INSTEAD OF INSERT ON measurement
BEGIN
    INSERT INTO measurement_row (id, raw_frame_id, device_id, subject_id, frame_sha256,
        device_clock, measured_at_epoch, received_at_epoch, sex, age_years, height_cm,
        weight_kg, warnings, measured_at_utc, received_at_utc, device_values_json)
    VALUES (NEW.id, NEW.raw_frame_id, NEW.device_id, NEW.subject_id, NEW.frame_sha256,
        NEW.device_clock, NEW.measured_at_epoch, NEW.received_at_epoch, NEW.sex,
        NEW.age_years, NEW.height_cm, NEW.weight_kg,
        NEW.warnings_json,
        nullif(NEW.measured_at_utc, $new_measured_utc),
        nullif(NEW.received_at_utc, $new_received_utc),
        NEW.device_values_json);
END
;

CREATE TRIGGER measurement_update INSTEAD OF UPDATE ON measurement
BEGIN
    UPDATE measurement_row SET
        id = NEW.id,
        raw_frame_id = NEW.raw_frame_id,
        device_id = NEW.device_id,
        subject_id = NEW.subject_id,
        frame_sha256 = CASE WHEN NEW.frame_sha256 IS OLD.frame_sha256 THEN frame_sha256
            ELSE NEW.frame_sha256 END,
        device_clock = NEW.device_clock,
        measured_at_epoch = NEW.measured_at_epoch,
        received_at_epoch = NEW.received_at_epoch,
        sex = NEW.sex,
        age_years = NEW.age_years,
        height_cm = NEW.height_cm,
        weight_kg = NEW.weight_kg,
        value_keys = CASE WHEN NEW.device_values_json IS OLD.device_values_json THEN value_keys END,
        value_list = CASE WHEN NEW.device_values_json IS OLD.device_values_json THEN value_list END,
        device_values_json = CASE WHEN NEW.device_values_json IS OLD.device_values_json
            THEN device_values_json ELSE NEW.device_values_json END,
        warnings = CASE WHEN NEW.warnings_json IS OLD.warnings_json THEN warnings
            ELSE NEW.warnings_json END,
        measured_at_utc = nullif(NEW.measured_at_utc, $new_measured_utc),
        received_at_utc = nullif(NEW.received_at_utc, $new_received_utc)
    WHERE id = OLD.id;
END
;

CREATE TRIGGER measurement_delete INSTEAD OF DELETE ON measurement
BEGIN
    DELETE FROM measurement_row WHERE id = OLD.id;
END
;

CREATE VIEW impedance AS
SELECT
    i.measurement_id,
    (SELECT text FROM label WHERE id = i.segment) AS segment,
    i.freq_khz,
    i.r_ohm,
    i.x_ohm,
    i.magnitude_only
FROM impedance_row i
;

CREATE TRIGGER impedance_insert INSTEAD OF INSERT ON impedance
BEGIN
    INSERT INTO label (text) SELECT NEW.segment WHERE NEW.segment NOT IN (SELECT text FROM label);
    INSERT INTO impedance_row (measurement_id, segment, freq_khz, r_ohm, x_ohm, magnitude_only)
    VALUES (NEW.measurement_id, (SELECT id FROM label WHERE text = NEW.segment), NEW.freq_khz,
        NEW.r_ohm, NEW.x_ohm, coalesce(NEW.magnitude_only, 0));
END
;

CREATE TRIGGER impedance_update INSTEAD OF UPDATE ON impedance
BEGIN
    INSERT INTO label (text) SELECT NEW.segment WHERE NEW.segment NOT IN (SELECT text FROM label);
    UPDATE impedance_row SET
        measurement_id = NEW.measurement_id,
        segment = (SELECT id FROM label WHERE text = NEW.segment),
        freq_khz = NEW.freq_khz,
        r_ohm = NEW.r_ohm,
        x_ohm = NEW.x_ohm,
        magnitude_only = NEW.magnitude_only
    WHERE measurement_id = OLD.measurement_id
      AND segment = (SELECT id FROM label WHERE text = OLD.segment)
      AND freq_khz = OLD.freq_khz;
END
;

CREATE TRIGGER impedance_delete INSTEAD OF DELETE ON impedance
BEGIN
    DELETE FROM impedance_row WHERE measurement_id = OLD.measurement_id
      AND segment = (SELECT id FROM label WHERE text = OLD.segment)
      AND freq_khz = OLD.freq_khz;
END
;

CREATE VIEW segment_result AS
SELECT
    $result_select
FROM result r
;

CREATE VIEW result_stream AS
SELECT
    r.rowid AS seq,
    $result_select
FROM result r
;

CREATE TRIGGER segment_result_insert INSTEAD OF INSERT ON segment_result
BEGIN
    INSERT INTO label (text) SELECT t FROM ($new_labels)
    WHERE t IS NOT NULL AND t NOT IN (SELECT text FROM label);
    INSERT INTO result ($result_names)
    VALUES ($new_values);
END
;

CREATE TRIGGER segment_result_update INSTEAD OF UPDATE ON segment_result
BEGIN
    INSERT INTO label (text) SELECT t FROM ($new_labels)
    WHERE t IS NOT NULL AND t NOT IN (SELECT text FROM label);
    UPDATE result SET $set_new
    WHERE $old_key;
END
;

CREATE TRIGGER segment_result_delete INSTEAD OF DELETE ON segment_result
BEGIN
    DELETE FROM result WHERE $old_key;
END
;

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
    (SELECT text FROM label WHERE id = wb.method) AS method,
    (SELECT text FROM label WHERE id = wb.method_version) AS method_version,
    wb.ecw_l AS whole_body_ecw_l,
    wb.icw_l AS whole_body_icw_l,
    wb.tbw_l AS whole_body_tbw_l,
    wb.ecw_tbw_ratio AS whole_body_ecw_tbw_ratio,
    (SELECT text FROM label WHERE id = wb.classification) AS whole_body_classification,
    wb.phase_angle_50khz_deg AS whole_body_phase_angle_50khz_deg,
    ra.ecw_tbw_ratio AS right_arm_ecw_tbw_ratio,
    la.ecw_tbw_ratio AS left_arm_ecw_tbw_ratio,
    tr.ecw_tbw_ratio AS trunk_ecw_tbw_ratio,
    rl.ecw_tbw_ratio AS right_leg_ecw_tbw_ratio,
    ll.ecw_tbw_ratio AS left_leg_ecw_tbw_ratio,
    m.warnings_json$wide_extra_packed
FROM measurement m
JOIN device d ON d.id = m.device_id
LEFT JOIN subject s ON s.id = m.subject_id
LEFT JOIN result wb
    ON wb.measurement_id = m.id AND wb.segment = (SELECT id FROM label WHERE text = 'whole_body')
    AND wb.method = (
        SELECT l.id FROM meta JOIN label l ON l.text = meta.value WHERE meta.key = 'report_method')
    AND NOT EXISTS (
        SELECT 1 FROM result x
        WHERE x.measurement_id = wb.measurement_id AND x.segment = wb.segment
          AND x.method = wb.method AND x.method_version <> wb.method_version
          AND (SELECT text FROM label WHERE id = x.method_version)
            > (SELECT text FROM label WHERE id = wb.method_version))
LEFT JOIN result ra ON ra.measurement_id = m.id
    AND ra.segment = (SELECT id FROM label WHERE text = 'right_arm')
    AND ra.method = wb.method AND ra.method_version = wb.method_version
LEFT JOIN result la ON la.measurement_id = m.id
    AND la.segment = (SELECT id FROM label WHERE text = 'left_arm')
    AND la.method = wb.method AND la.method_version = wb.method_version
LEFT JOIN result tr ON tr.measurement_id = m.id
    AND tr.segment = (SELECT id FROM label WHERE text = 'trunk')
    AND tr.method = wb.method AND tr.method_version = wb.method_version
LEFT JOIN result rl ON rl.measurement_id = m.id
    AND rl.segment = (SELECT id FROM label WHERE text = 'right_leg')
    AND rl.method = wb.method AND rl.method_version = wb.method_version
LEFT JOIN result ll ON ll.measurement_id = m.id
    AND ll.segment = (SELECT id FROM label WHERE text = 'left_leg')
    AND ll.method = wb.method AND ll.method_version = wb.method_version
;

CREATE VIEW v_edema_result AS
SELECT
    m.id AS measurement_id,
    m.subject_id,
    s.pseudonym AS subject_pseudonym,
    s.external_id AS subject_external_id,
    coalesce(m.measured_at_utc, m.received_at_utc) AS measured_at_utc,
    coalesce(m.measured_at_epoch, m.received_at_epoch) AS measured_at_epoch,
    (SELECT text FROM label WHERE id = r.segment) AS segment,
    (SELECT text FROM label WHERE id = r.method) AS method,
    (SELECT text FROM label WHERE id = r.method_version) AS method_version,
    r.ecw_l,
    r.icw_l,
    r.tbw_l,
    r.ecw_tbw_ratio,
    r.phase_angle_50khz_deg,
    r.r0_ohm,
    r.rinf_ohm,
    (SELECT text FROM label WHERE id = r.classification) AS classification,
    (SELECT text FROM label WHERE id = r.fit_status) AS fit_status,
    mt.ecw_tbw_normal_max,
    mt.ecw_tbw_slight_max$result_extra_packed
FROM result r
JOIN measurement m ON m.id = r.measurement_id
JOIN subject s ON s.id = m.subject_id
LEFT JOIN method mt ON mt.name = (SELECT text FROM label WHERE id = r.method)
    AND mt.version = (SELECT text FROM label WHERE id = r.method_version)
WHERE r.method = (
      SELECT l.id FROM meta JOIN label l ON l.text = meta.value WHERE meta.key = 'report_method')
  AND NOT EXISTS (
      SELECT 1 FROM result x
      WHERE x.measurement_id = r.measurement_id AND x.segment = r.segment
        AND x.method = r.method AND x.method_version <> r.method_version
        AND (SELECT text FROM label WHERE id = x.method_version)
          > (SELECT text FROM label WHERE id = r.method_version))
;

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
    -- issue 12: change beyond the minimal detectable change, MDC95 = 1.96·√(SD² + SD_b²),
    -- from the 95 % intervals (half-width = 1.96 SD): no square root needed
    t.r0_ohm - b.r0_ohm AS r0_ohm_change,
    CASE WHEN t.r0_high_ohm IS NULL OR b.r0_high_ohm IS NULL OR t.r0_ohm IS NULL OR b.r0_ohm IS NULL THEN NULL
         WHEN 4 * (t.r0_ohm - b.r0_ohm) * (t.r0_ohm - b.r0_ohm) >
              (t.r0_high_ohm - t.r0_low_ohm) * (t.r0_high_ohm - t.r0_low_ohm) + (b.r0_high_ohm - b.r0_low_ohm) * (b.r0_high_ohm - b.r0_low_ohm)
         THEN CASE WHEN t.r0_ohm > b.r0_ohm THEN 'increased' ELSE 'decreased' END
         ELSE 'within MDC' END AS r0_change_vs_mdc,
    CASE WHEN t.ecw_high_l IS NULL OR b.ecw_high_l IS NULL OR t.ecw_l IS NULL OR b.ecw_l IS NULL THEN NULL
         WHEN 4 * (t.ecw_l - b.ecw_l) * (t.ecw_l - b.ecw_l) >
              (t.ecw_high_l - t.ecw_low_l) * (t.ecw_high_l - t.ecw_low_l) + (b.ecw_high_l - b.ecw_low_l) * (b.ecw_high_l - b.ecw_low_l)
         THEN CASE WHEN t.ecw_l > b.ecw_l THEN 'increased' ELSE 'decreased' END
         ELSE 'within MDC' END AS ecw_l_change_vs_mdc,
    CASE WHEN t.segment IN ('right_arm', 'left_arm') THEN 'arms'
         WHEN t.segment IN ('right_leg', 'left_leg') THEN 'legs' END AS limb_pair,
    o.ecw_tbw_ratio AS other_side_ecw_tbw_ratio,
    t.ecw_tbw_ratio - o.ecw_tbw_ratio AS ecw_tbw_ratio_minus_other_side,
    o.r0_ohm / t.r0_ohm AS r0_other_side_over_this,
    100.0 * (t.ecw_l - o.ecw_l) / o.ecw_l AS ecw_vs_other_side_pct$trend_extra
FROM v_edema_result t
LEFT JOIN result b ON b.segment = (SELECT id FROM label WHERE text = t.segment)
    AND b.method = (SELECT id FROM label WHERE text = t.method)
    AND b.measurement_id = (
        SELECT x.measurement_id FROM v_edema_result x
        WHERE x.subject_id = t.subject_id AND x.segment = t.segment
          AND x.ecw_tbw_ratio IS NOT NULL
        ORDER BY x.measured_at_epoch, x.measurement_id LIMIT 1)
    AND NOT EXISTS (
        SELECT 1 FROM result y
        WHERE y.measurement_id = b.measurement_id AND y.segment = b.segment
          AND y.method = b.method AND y.method_version <> b.method_version
          AND (SELECT text FROM label WHERE id = y.method_version)
            > (SELECT text FROM label WHERE id = b.method_version))
LEFT JOIN measurement bm ON bm.id = b.measurement_id
LEFT JOIN result o ON o.measurement_id = t.measurement_id
    AND o.segment = (SELECT id FROM label WHERE text = CASE t.segment $pairs END)
    AND o.method = (SELECT id FROM label WHERE text = t.method)
    AND o.method_version = (SELECT id FROM label WHERE text = t.method_version)
;

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
    t.r0_other_side_over_this, t.ecw_vs_other_side_pct$latest_extra
FROM subject s
CROSS JOIN (VALUES $segments) AS k
JOIN v_edema_trend t ON t.subject_id = s.id AND t.segment = k.column1
    AND t.measurement_id = (
        SELECT x.measurement_id FROM v_edema_result x
        WHERE x.subject_id = s.id AND x.segment = k.column1
          AND x.ecw_tbw_ratio IS NOT NULL
        ORDER BY x.measured_at_epoch DESC, x.measurement_id DESC LIMIT 1)
;
