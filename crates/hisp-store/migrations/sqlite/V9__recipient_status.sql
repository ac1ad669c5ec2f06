-- A failed recipient keeps the RFC 3463 status its refusal carried
-- (`5.1.1`), the Status of the DSN that tells its sender; NULL when none
-- did (a timeout, hisp's own refusals), which the DSN gives as `5.0.0`.

ALTER TABLE recipients ADD COLUMN status TEXT;
