-- Holiday calendars of a version's send window (docs/sending.md#policies):
-- ISO country codes whose national holidays close the window for the day
-- in the contact's zone.
ALTER TABLE sequence_versions ADD COLUMN window_holidays text[] NOT NULL DEFAULT '{}';
