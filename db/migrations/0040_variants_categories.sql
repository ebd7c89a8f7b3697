-- Step variants, the auto-winner and reply categories (docs/sequences.md).
--
-- steps.variants holds the step's 2-5 alternatives ([] when it has none):
-- [{"key","subject","body_text","body_html","weight"}], immutable with the
-- step; auto_winner the optional rule {"metric","min_sent","confidence"};
-- winner_variant and promoted_at the promoted variant (operational state,
-- written once by the promotion, also on active versions).
ALTER TABLE steps ADD COLUMN variants jsonb NOT NULL DEFAULT '[]';
ALTER TABLE steps ADD CONSTRAINT steps_variants_array CHECK (jsonb_typeof(variants) = 'array');
ALTER TABLE steps ADD COLUMN auto_winner jsonb;
ALTER TABLE steps ADD COLUMN winner_variant text;
ALTER TABLE steps ADD COLUMN promoted_at timestamptz;

-- The variant an execution was given, chosen the first time it is reserved
-- and kept by every retry of it (NULL: the step has no variants).
ALTER TABLE step_executions ADD COLUMN variant text;
-- Per-variant counts of a step read only the executions of steps with
-- variants.
CREATE INDEX step_executions_variant_idx ON step_executions (tenant_key, step_id, variant)
    WHERE variant IS NOT NULL AND state = 'sent';

-- A human reply's category, the phrase that decided it, and who set it
-- (engine, or an operator's or CRM's correction).
ALTER TABLE inbound_messages ADD COLUMN category text;
ALTER TABLE inbound_messages ADD CONSTRAINT inbound_messages_category_check
    CHECK (category IN ('interested', 'not_interested', 'not_now', 'referral', 'wrong_person', 'question', 'uncategorized'));
ALTER TABLE inbound_messages ADD COLUMN category_evidence jsonb;
ALTER TABLE inbound_messages ADD COLUMN category_source text;
ALTER TABLE inbound_messages ADD CONSTRAINT inbound_messages_category_source_check
    CHECK (category_source IN ('engine', 'operator', 'crm'));
ALTER TABLE inbound_messages ADD COLUMN category_updated_at timestamptz;
CREATE INDEX inbound_messages_execution_idx ON inbound_messages (tenant_key, step_execution_id)
    WHERE step_execution_id IS NOT NULL;

-- The enrollment's latest reply category.
ALTER TABLE enrollments ADD COLUMN reply_category text;
ALTER TABLE enrollments ADD CONSTRAINT enrollments_reply_category_check
    CHECK (reply_category IN ('interested', 'not_interested', 'not_now', 'referral', 'wrong_person', 'question', 'uncategorized'));
