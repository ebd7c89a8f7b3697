-- DKIM alignment from our own sent copy (docs/preflight.md): the latest
-- copy of a message an adapter of the domain sent, as mailbox sync read it
-- from the mailbox's \Sent folder (Message-ID, From domain, the d=/s= of
-- each DKIM-Signature, when). NULL until one was seen.
ALTER TABLE sender_domains ADD COLUMN dkim_seen jsonb;
