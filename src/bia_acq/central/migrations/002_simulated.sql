-- 002_simulated: the local m006_simulated's flags (1: stored by the built-in simulator,
-- for trying bia-acq only), so readers of the central database can leave them out too.
ALTER TABLE device ADD COLUMN simulated smallint NOT NULL DEFAULT 0 CHECK (simulated IN (0, 1));
ALTER TABLE subject ADD COLUMN simulated smallint NOT NULL DEFAULT 0 CHECK (simulated IN (0, 1));
