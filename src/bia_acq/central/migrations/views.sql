-- The readers' views of the central database, with the names and columns of the local
-- database's (src/bia_acq/store/sql/views.sql), so a reader's query works on either.
-- Not a migration: `bia-acq central migrate` makes them anew at every run, with the
-- placeholders of the local views filled the same way (bia_acq.store.schema.
-- view_placeholders: the published result columns appended), then the grants.
-- Statements are separated by a line holding only ";". Differences, all by design:
--   * measurement_id is site_no * 10^12 + the site's own measurement id (unique
--     across sites; equal to the local id's order within a site);
--   * subject_id is the person: one patient measured at two sites (with the group's
--     pseudonym key) has one subject_id and one trend;
--   * subject_external_id is NULL unless the site sends identifiers;
--   * method versions compare byte-wise (COLLATE "C") as SQLite compares text;
--   * a division by zero gives NULL, as in SQLite.

-- every result of the report method's highest version, with the site's own ids
CREATE VIEW edema_result_by_site AS
SELECT
    r.site,
    r.measurement_id AS local_measurement_id,
    m.gid AS measurement_id,
    s.person_id AS subject_id,
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
    mt.ecw_tbw_slight_max$result_extra
FROM segment_result r
JOIN measurement m ON m.site = r.site AND m.id = r.measurement_id
JOIN subject s ON s.site = m.site AND s.id = m.subject_id
LEFT JOIN method mt ON mt.site = r.site AND mt.name = r.method AND mt.version = r.method_version
WHERE r.method = (SELECT value FROM meta WHERE key = 'report_method')
  AND r.method_version = (
      SELECT max(x.method_version COLLATE "C") FROM segment_result x
      WHERE x.site = r.site AND x.measurement_id = r.measurement_id
        AND x.segment = r.segment AND x.method = r.method)
;

CREATE VIEW v_edema_result AS
SELECT
    measurement_id, subject_id, subject_pseudonym, subject_external_id, measured_at_utc,
    measured_at_epoch, segment, method, method_version, ecw_l, icw_l, tbw_l, ecw_tbw_ratio,
    phase_angle_50khz_deg, r0_ohm, rinf_ohm, classification, fit_status,
    ecw_tbw_normal_max, ecw_tbw_slight_max$result_extra
FROM edema_result_by_site r
;

CREATE VIEW v_edema_trend AS
SELECT
    t.subject_id, t.subject_pseudonym, t.subject_external_id, t.measurement_id,
    (SELECT count(*) FROM edema_result_by_site v
     WHERE v.subject_id = t.subject_id AND v.segment = t.segment
       AND (v.measured_at_epoch < t.measured_at_epoch
            OR (v.measured_at_epoch = t.measured_at_epoch
                AND v.measurement_id <= t.measurement_id))) AS visit_number,
    t.measured_at_utc, t.measured_at_epoch, t.segment, t.method, t.method_version,
    t.ecw_l, t.icw_l, t.tbw_l, t.ecw_tbw_ratio, t.phase_angle_50khz_deg, t.r0_ohm,
    t.classification, t.fit_status, t.ecw_tbw_normal_max, t.ecw_tbw_slight_max,
    b.site::bigint * 1000000000000 + b.measurement_id AS baseline_measurement_id,
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
    o.r0_ohm / nullif(t.r0_ohm, 0) AS r0_other_side_over_this,
    100.0 * (t.ecw_l - o.ecw_l) / nullif(o.ecw_l, 0) AS ecw_vs_other_side_pct$trend_extra
FROM edema_result_by_site t
LEFT JOIN LATERAL (
    SELECT x.site, x.local_measurement_id, x.measurement_id FROM edema_result_by_site x
    WHERE x.subject_id = t.subject_id AND x.segment = t.segment
      AND x.ecw_tbw_ratio IS NOT NULL
    ORDER BY x.measured_at_epoch, x.measurement_id LIMIT 1) bx ON true
LEFT JOIN segment_result b ON b.site = bx.site AND b.measurement_id = bx.local_measurement_id
    AND b.segment = t.segment AND b.method = t.method
    AND b.method_version = (
        SELECT max(y.method_version COLLATE "C") FROM segment_result y
        WHERE y.site = b.site AND y.measurement_id = b.measurement_id
          AND y.segment = b.segment AND y.method = b.method)
LEFT JOIN measurement bm ON bm.site = b.site AND bm.id = b.measurement_id
LEFT JOIN segment_result o ON o.site = t.site AND o.measurement_id = t.local_measurement_id
    AND o.segment = CASE t.segment $pairs END
    AND o.method = t.method AND o.method_version = t.method_version
;

CREATE VIEW v_edema_latest AS
SELECT
    t.subject_id, t.subject_pseudonym, t.subject_external_id, t.segment,
    t.measurement_id, t.measured_at_utc, t.measured_at_epoch,
    (SELECT count(*) FROM edema_result_by_site v
     WHERE v.subject_id = p.id AND v.segment = k.column1
       AND v.ecw_tbw_ratio IS NOT NULL) AS visits,
    t.method, t.method_version, t.ecw_l, t.icw_l, t.tbw_l, t.ecw_tbw_ratio,
    t.ecw_tbw_normal_max, t.ecw_tbw_slight_max, t.classification,
    t.phase_angle_50khz_deg, t.baseline_measured_at_utc, t.baseline_ecw_tbw_ratio,
    t.ecw_tbw_ratio_change, t.days_since_baseline, t.limb_pair,
    t.other_side_ecw_tbw_ratio, t.ecw_tbw_ratio_minus_other_side,
    t.r0_other_side_over_this, t.ecw_vs_other_side_pct$latest_extra
FROM person p
CROSS JOIN (VALUES $segments) AS k
JOIN v_edema_trend t ON t.subject_id = p.id AND t.segment = k.column1
    AND t.measurement_id = (
        SELECT x.measurement_id FROM edema_result_by_site x
        WHERE x.subject_id = p.id AND x.segment = k.column1
          AND x.ecw_tbw_ratio IS NOT NULL
        ORDER BY x.measured_at_epoch DESC, x.measurement_id DESC LIMIT 1)
;

CREATE VIEW v_measurement_wide AS
SELECT
    m.gid AS measurement_id,
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
    m.warnings_json$wide_extra
FROM measurement m
JOIN device d ON d.site = m.site AND d.id = m.device_id
LEFT JOIN subject s ON s.site = m.site AND s.id = m.subject_id
LEFT JOIN segment_result wb
    ON wb.site = m.site AND wb.measurement_id = m.id AND wb.segment = 'whole_body'
    AND wb.method = (SELECT value FROM meta WHERE key = 'report_method')
    AND wb.method_version = (
        SELECT max(x.method_version COLLATE "C") FROM segment_result x
        WHERE x.site = m.site AND x.measurement_id = m.id AND x.segment = 'whole_body'
          AND x.method = wb.method)
LEFT JOIN segment_result ra ON ra.site = m.site AND ra.measurement_id = m.id
    AND ra.segment = 'right_arm' AND ra.method = wb.method AND ra.method_version = wb.method_version
LEFT JOIN segment_result la ON la.site = m.site AND la.measurement_id = m.id
    AND la.segment = 'left_arm' AND la.method = wb.method AND la.method_version = wb.method_version
LEFT JOIN segment_result tr ON tr.site = m.site AND tr.measurement_id = m.id
    AND tr.segment = 'trunk' AND tr.method = wb.method AND tr.method_version = wb.method_version
LEFT JOIN segment_result rl ON rl.site = m.site AND rl.measurement_id = m.id
    AND rl.segment = 'right_leg' AND rl.method = wb.method AND rl.method_version = wb.method_version
LEFT JOIN segment_result ll ON ll.site = m.site AND ll.measurement_id = m.id
    AND ll.segment = 'left_leg' AND ll.method = wb.method AND ll.method_version = wb.method_version
;

-- The reader schema: views named like the local tables that bia_acq.store.read queries,
-- with the ids of the views above (a measurement's across sites, a subject's person),
-- so reports and exports run the same SQL here (bia_acq.central.reader).
CREATE VIEW bia_acq_read.measurement AS
SELECT
    m.gid AS id,
    m.site::bigint * 1000000000000 + m.raw_frame_id AS raw_frame_id,
    m.site::bigint * 1000000000000 + m.device_id AS device_id,
    s.person_id AS subject_id,
    m.frame_sha256, m.device_clock, m.measured_at_utc, m.measured_at_epoch,
    m.received_at_utc, m.received_at_epoch, m.sex, m.age_years, m.height_cm, m.weight_kg,
    m.device_values_json, m.warnings_json
FROM measurement m
LEFT JOIN subject s ON s.site = m.site AND s.id = m.subject_id
;

CREATE VIEW bia_acq_read.device AS
SELECT site::bigint * 1000000000000 + id AS id, driver, port, model, serial_number,
    first_seen_utc
FROM device
;

CREATE VIEW bia_acq_read.subject AS
SELECT DISTINCT ON (p.id) p.id, p.pseudonym, s.external_id, s.first_seen_utc
FROM person p
JOIN subject s ON s.person_id = p.id
ORDER BY p.id, s.external_id NULLS LAST, s.first_seen_utc
;

CREATE VIEW bia_acq_read.impedance AS
SELECT m.gid AS measurement_id, i.segment, i.freq_khz, i.r_ohm, i.x_ohm, i.magnitude_only
FROM impedance i
JOIN measurement m ON m.site = i.site AND m.id = i.measurement_id
;

-- every result of every method (the device's own figures beside the report method's)
CREATE VIEW bia_acq_read.segment_result AS
SELECT m.gid AS measurement_id, r.segment, r.method, r.method_version, r.ecw_l, r.icw_l,
    r.tbw_l, r.ecw_tbw_ratio, r.phase_angle_50khz_deg, r.r0_ohm, r.rinf_ohm,
    r.classification, r.fit_status$result_extra
FROM segment_result r
JOIN measurement m ON m.site = r.site AND m.id = r.measurement_id
;

-- a method's bands as the most recently started site has them
CREATE VIEW bia_acq_read.method AS
SELECT DISTINCT ON (name, version) name, version, description, citation,
    ecw_tbw_normal_max, ecw_tbw_slight_max, bands_source, updated_at_utc, kind,
    ecw_tbw_normal_min
FROM method
ORDER BY name, version, updated_at_utc DESC
;

CREATE VIEW bia_acq_read.meta AS
SELECT key, value FROM meta WHERE key = 'report_method'
UNION ALL
SELECT 'pseudonym_key', value FROM meta WHERE key = 'fingerprint_key'
;

CREATE VIEW bia_acq_read._sqlite_migrations AS
SELECT 'bia_acq'::text AS migration_set, 'm004_reader_views'::text AS name
;
