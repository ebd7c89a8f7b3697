-- max_in_flight in one place (SPEC §6.1a): the claim and the reservation
-- both ask these.
--
-- dripdrop_max_in_flight is an adapter's limit of concurrent sends: its
-- own, else 1 when it has a minimum gap, else 4 (an expression the planner
-- inlines).
CREATE FUNCTION dripdrop_max_in_flight(max_in_flight integer, min_gap_seconds integer, gap_jitter_seconds integer)
RETURNS integer LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(max_in_flight, CASE WHEN min_gap_seconds > 0 OR gap_jitter_seconds > 0 THEN 1 ELSE 4 END)
$$;

-- dripdrop_in_flight counts an adapter's sends in flight in every process:
-- executions "sending" under a live lease (read through
-- step_executions_sending_idx).
CREATE FUNCTION dripdrop_in_flight(tenant text, adapter uuid, now timestamptz)
RETURNS integer LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT count(*) FROM step_executions f
            WHERE f.tenant_key = tenant AND f.adapter_id = adapter AND f.state = 'sending' AND f.lease_expires_at > now);
END $$;
