-- An enrollment's follow-ups are never due before not_before: an
-- out-of-office reply's return time. Executions already scheduled move to
-- it when the reply arrives; a send already in flight then records its
-- next step no earlier than it (docs/ingest.md).
ALTER TABLE enrollments ADD COLUMN not_before timestamptz;
