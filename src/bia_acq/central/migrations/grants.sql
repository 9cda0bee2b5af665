-- Privileges, applied after the migrations at every `bia-acq central migrate`
-- (idempotent). Group roles, created by the administrator (docs/central.md):
--   bia_acq_site    every site's login role is a member: writes its own rows (RLS)
--   bia_acq_reader  reporting tools' login roles are members: read the views only
GRANT USAGE ON SCHEMA bia_acq TO bia_acq_site, bia_acq_reader;
GRANT SELECT ON site TO bia_acq_site;
GRANT UPDATE (database_fingerprint) ON site TO bia_acq_site;
GRANT SELECT, INSERT, UPDATE ON sync_state, device, subject, raw_frame, measurement,
    impedance, segment_result, method, subject_baseline TO bia_acq_site;
GRANT DELETE ON subject_baseline, method TO bia_acq_site;
GRANT EXECUTE ON FUNCTION my_site() TO bia_acq_site;
REVOKE ALL ON person, meta FROM bia_acq_site;
GRANT SELECT ON v_edema_result, v_edema_trend, v_edema_latest, v_measurement_wide,
    edema_result_by_site TO bia_acq_reader;
-- reports and exports (bia_acq.central.reader): the reader schema's views
GRANT USAGE ON SCHEMA bia_acq_read TO bia_acq_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA bia_acq_read TO bia_acq_reader;
