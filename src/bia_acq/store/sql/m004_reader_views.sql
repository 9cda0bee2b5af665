-- m004_reader_views
-- Readers' schema: the ``method`` table (band limits in SQL). The edema views it
-- added are now in views.sql, made again whenever their text changes.

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
