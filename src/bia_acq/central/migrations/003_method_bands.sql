-- 003_method_bands: the local m007_intervals_labels's method table (issue 12): band limits
-- are optional (NULL: no published band; the bands_source says what was searched) and
-- bands_site says the bands are the site's own (1) rather than a publication's. The result
-- columns m007 adds (intervals, band_source, asymmetry) come from the result record at
-- every `central migrate`, as every result column does.
ALTER TABLE method ALTER COLUMN ecw_tbw_normal_max DROP NOT NULL;
ALTER TABLE method ALTER COLUMN ecw_tbw_slight_max DROP NOT NULL;
ALTER TABLE method ADD COLUMN bands_site smallint NOT NULL DEFAULT 0 CHECK (bands_site IN (0, 1));
