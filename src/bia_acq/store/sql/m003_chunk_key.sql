-- m003_chunk_key
-- ``raw_frame.chunk_key``: the idempotency key of a received chunk.
--
-- Every batch of chunks a reader hands to the writer gets a random key; chunk
-- ``i`` is journaled as ``KEY.i``. Moving a spooled batch into the database a
-- second time (after a crash mid-move) finds its keys and stores nothing twice.
-- Rows journaled before this migration have no key (NULL).

ALTER TABLE raw_frame ADD COLUMN chunk_key TEXT;
CREATE UNIQUE INDEX raw_frame_chunk_key ON raw_frame (chunk_key);
