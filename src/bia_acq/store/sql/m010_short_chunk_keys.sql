-- m010_short_chunk_keys
-- Issue 13: an imported chunk's key is ``file:/absolute/path@OFFSET#`` and the first 12
-- hex digits (48 bits) of its SHA-256 instead of all 64: the key is stored twice (the
-- row and its unique index), and the full hash is in ``raw_frame.sha256`` anyway. What
-- the hash part keeps apart is a changed file's bytes at one offset of one path, where
-- 48 bits make a clash negligible. Keys written before are shortened the same way, so
-- importing a file again still finds its chunks. Service batches' keys (``KEY.i``)
-- are left as they are.

UPDATE raw_frame SET chunk_key = substr(chunk_key, 1, length(chunk_key) - 52)
WHERE chunk_key LIKE 'file:%' AND substr(chunk_key, -65, 1) = '#';
