-- m005_core
-- Fit quality per result, the method's kind and lower band, chosen baselines.
--
-- * ``segment_result.fit_grade`` (good, fair, poor, failed; NULL for methods
--   without a Cole fit) and ``fit_flags`` (bit set, see ``bia_acq.core.fit``).
-- * ``method.kind`` (``bis`` or ``regression``) and ``method.ecw_tbw_normal_min``
--   (a "below normal" limit, NULL where the method has none), beside the band
--   limits m002 added; the writer fills them with the bands in force.
-- * ``subject_baseline``: the measurement a subject's changes are measured
--   from when a clinician chose one; without a row, the subject's first
--   measurement is the baseline.

ALTER TABLE segment_result ADD COLUMN fit_grade TEXT;
ALTER TABLE segment_result ADD COLUMN fit_flags INTEGER;
ALTER TABLE method ADD COLUMN kind TEXT;
ALTER TABLE method ADD COLUMN ecw_tbw_normal_min REAL;

CREATE TABLE subject_baseline (
    subject_id INTEGER PRIMARY KEY REFERENCES subject (id),
    measurement_id INTEGER NOT NULL REFERENCES measurement (id),
    chosen_at_utc TEXT NOT NULL
) STRICT;
