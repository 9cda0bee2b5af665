-- m008_pseudonym_128
-- Pseudonyms of 128 bits (issue 11): "P-" and 32 hex digits of HMAC-SHA256(key, ID)
-- instead of 10, so two patient IDs mapping to one pseudonym is negligible at any
-- clinic size. The first 12 characters are the old pseudonym, which the UI keeps
-- showing. bia_pseudonym() is registered by store.db.open_writer with the key.
UPDATE subject SET pseudonym = coalesce(bia_pseudonym(external_id), pseudonym)
WHERE length(pseudonym) < 34;
