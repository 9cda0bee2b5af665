-- m006_simulated
-- ``device.simulated`` and ``subject.simulated``: 1 for what the built-in simulator of
-- ``bia-acq run`` (no --config) stored, 0 for everything an analyzer sent. Readers can
-- leave simulated patients out; ``run`` without --config refuses a database that holds
-- measurements of non-simulated devices, so simulated patients never join real ones.
-- Rows stored before this migration are 0: nothing said they were simulated.

ALTER TABLE device ADD COLUMN simulated INTEGER NOT NULL DEFAULT 0 CHECK (simulated IN (0, 1));
ALTER TABLE subject ADD COLUMN simulated INTEGER NOT NULL DEFAULT 0 CHECK (simulated IN (0, 1));
