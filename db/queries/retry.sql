-- name: LastExecution :one
-- The enrollment's latest execution: the furthest step, its newest window.
SELECT x.id, x.step_id, x.state, x.attempt_window, x.followup, x.adapter_id, st.adapter_override_id
FROM step_executions x
JOIN steps st ON st.tenant_key = x.tenant_key AND st.id = x.step_id
WHERE x.tenant_key = @tenant_key AND x.enrollment_id = @enrollment_id
ORDER BY st.position DESC, x.attempt_window DESC
LIMIT 1;
