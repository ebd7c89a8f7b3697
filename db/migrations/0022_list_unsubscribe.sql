-- Per-version List-Unsubscribe headers (docs/sending.md): one_click (the
-- https one-click link and mailto:, as every version sent before), mailto
-- (only the mailto: form) or off (none). The column is added with its
-- default and constrained in a separate statement (Citus-friendly).

ALTER TABLE sequence_versions
    ADD COLUMN list_unsubscribe text NOT NULL DEFAULT 'one_click';

ALTER TABLE sequence_versions
    ADD CONSTRAINT sequence_versions_list_unsubscribe_check CHECK (list_unsubscribe IN ('one_click', 'mailto', 'off'));
