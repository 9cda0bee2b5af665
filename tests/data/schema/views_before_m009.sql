-- The reader views as bia-acq made them before m009 (main at 9a40b32, placeholders filled):
-- tests/test_schema_upgrade.py runs them on a v8 database to compare with m009's.
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
    m.warnings_json,
    wb.r0_low_ohm AS whole_body_r0_low_ohm,
    wb.r0_high_ohm AS whole_body_r0_high_ohm,
    wb.rinf_low_ohm AS whole_body_rinf_low_ohm,
    wb.rinf_high_ohm AS whole_body_rinf_high_ohm,
    wb.ecw_low_l AS whole_body_ecw_low_l,
    wb.ecw_high_l AS whole_body_ecw_high_l,
    wb.icw_low_l AS whole_body_icw_low_l,
    wb.icw_high_l AS whole_body_icw_high_l,
    wb.tbw_low_l AS whole_body_tbw_low_l,
    wb.tbw_high_l AS whole_body_tbw_high_l,
    wb.ecw_tbw_low AS whole_body_ecw_tbw_low,
    wb.ecw_tbw_high AS whole_body_ecw_tbw_high,
    wb.band_source AS whole_body_band_source,
    wb.asymmetry_r0_ratio AS whole_body_asymmetry_r0_ratio,
    wb.asymmetry AS whole_body_asymmetry
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
    mt.ecw_tbw_slight_max,
    r.r0_low_ohm,
    r.r0_high_ohm,
    r.rinf_low_ohm,
    r.rinf_high_ohm,
    r.ecw_low_l,
    r.ecw_high_l,
    r.icw_low_l,
    r.icw_high_l,
    r.tbw_low_l,
    r.tbw_high_l,
    r.ecw_tbw_low,
    r.ecw_tbw_high,
    r.band_source,
    r.asymmetry_r0_ratio,
    r.asymmetry
FROM segment_result r
JOIN measurement m ON m.id = r.measurement_id
JOIN subject s ON s.id = m.subject_id
LEFT JOIN method mt ON mt.name = r.method AND mt.version = r.method_version
WHERE r.method = (SELECT value FROM meta WHERE key = 'report_method')
  AND r.method_version = (
      SELECT max(x.method_version) FROM segment_result x
      WHERE x.measurement_id = r.measurement_id AND x.segment = r.segment
        AND x.method = r.method)
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
    100.0 * (t.ecw_l - o.ecw_l) / o.ecw_l AS ecw_vs_other_side_pct,
    t.r0_low_ohm,
    t.r0_high_ohm,
    t.rinf_low_ohm,
    t.rinf_high_ohm,
    t.ecw_low_l,
    t.ecw_high_l,
    t.icw_low_l,
    t.icw_high_l,
    t.tbw_low_l,
    t.tbw_high_l,
    t.ecw_tbw_low,
    t.ecw_tbw_high,
    t.band_source,
    t.asymmetry_r0_ratio,
    t.asymmetry
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
    AND o.segment = CASE t.segment WHEN 'right_arm' THEN 'left_arm' WHEN 'left_arm' THEN 'right_arm' WHEN 'right_leg' THEN 'left_leg' WHEN 'left_leg' THEN 'right_leg' END
    AND o.method = t.method AND o.method_version = t.method_version
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
    t.r0_other_side_over_this, t.ecw_vs_other_side_pct,
    t.r0_low_ohm,
    t.r0_high_ohm,
    t.rinf_low_ohm,
    t.rinf_high_ohm,
    t.ecw_low_l,
    t.ecw_high_l,
    t.icw_low_l,
    t.icw_high_l,
    t.tbw_low_l,
    t.tbw_high_l,
    t.ecw_tbw_low,
    t.ecw_tbw_high,
    t.band_source,
    t.asymmetry_r0_ratio,
    t.asymmetry
FROM subject s
CROSS JOIN (VALUES ('right_arm'), ('left_arm'), ('trunk'), ('right_leg'), ('left_leg'), ('whole_body')) AS k
JOIN v_edema_trend t ON t.subject_id = s.id AND t.segment = k.column1
    AND t.measurement_id = (
        SELECT x.measurement_id FROM v_edema_result x
        WHERE x.subject_id = s.id AND x.segment = k.column1
          AND x.ecw_tbw_ratio IS NOT NULL
        ORDER BY x.measured_at_epoch DESC, x.measurement_id DESC LIMIT 1)
;
