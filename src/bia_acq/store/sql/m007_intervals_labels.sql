-- m007_intervals_labels
-- Issue 12: every label earned (docs/physiology.md).
--
-- * ``segment_result``: the 95 % interval of R0, R∞, ECW, ICW, TBW and ECW/TBW
--   (``*_low*``, ``*_high*``), the source of the band a label was judged by
--   (``band_source``: the method's, the vendor's or the site's; '' without one),
--   and per limb the inter-limb R0 ratio (other side / this side) with its label
--   against the published limits (``asymmetry``: asymmetric, within limits,
--   indeterminate, not applicable).
-- * ``method``: band limits become optional (NULL: no published band) and
--   ``bands_site`` says the bands are the site's (1) rather than a publication's.
--   SQLite cannot drop NOT NULL in place: the table is rebuilt; the views that
--   read it are dropped first and made again from views.sql after the migration.

ALTER TABLE segment_result ADD COLUMN r0_low_ohm REAL;
ALTER TABLE segment_result ADD COLUMN r0_high_ohm REAL;
ALTER TABLE segment_result ADD COLUMN rinf_low_ohm REAL;
ALTER TABLE segment_result ADD COLUMN rinf_high_ohm REAL;
ALTER TABLE segment_result ADD COLUMN ecw_low_l REAL;
ALTER TABLE segment_result ADD COLUMN ecw_high_l REAL;
ALTER TABLE segment_result ADD COLUMN icw_low_l REAL;
ALTER TABLE segment_result ADD COLUMN icw_high_l REAL;
ALTER TABLE segment_result ADD COLUMN tbw_low_l REAL;
ALTER TABLE segment_result ADD COLUMN tbw_high_l REAL;
ALTER TABLE segment_result ADD COLUMN ecw_tbw_low REAL;
ALTER TABLE segment_result ADD COLUMN ecw_tbw_high REAL;
ALTER TABLE segment_result ADD COLUMN band_source TEXT;
ALTER TABLE segment_result ADD COLUMN asymmetry_r0_ratio REAL;
ALTER TABLE segment_result ADD COLUMN asymmetry TEXT;

DROP VIEW IF EXISTS v_edema_latest;
DROP VIEW IF EXISTS v_edema_trend;
DROP VIEW IF EXISTS v_edema_result;
DROP VIEW IF EXISTS v_measurement_wide;

CREATE TABLE method_m007 (
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    description TEXT NOT NULL,
    citation TEXT NOT NULL,
    ecw_tbw_normal_max REAL,
    ecw_tbw_slight_max REAL,
    bands_source TEXT NOT NULL,
    updated_at_utc TEXT NOT NULL,
    kind TEXT,
    ecw_tbw_normal_min REAL,
    bands_site INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (name, version)
) STRICT;
INSERT INTO method_m007 (name, version, description, citation, ecw_tbw_normal_max,
    ecw_tbw_slight_max, bands_source, updated_at_utc, kind, ecw_tbw_normal_min, bands_site)
SELECT name, version, description, citation, ecw_tbw_normal_max, ecw_tbw_slight_max,
    bands_source, updated_at_utc, kind, ecw_tbw_normal_min,
    CASE WHEN bands_source = 'configured' THEN 1 ELSE 0 END
FROM method;
DROP TABLE method;
ALTER TABLE method_m007 RENAME TO method;
