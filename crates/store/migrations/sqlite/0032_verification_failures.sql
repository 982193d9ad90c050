-- A fix verification whose rescan task fails (the agent reports an error, or the task passes
-- its deadline unfinished) is failed too, with the task's message as the reason, instead of
-- staying pending forever.
ALTER TABLE fix_verifications ADD COLUMN reason TEXT;

-- A trigger rather than code on each path: tasks fail when the agent reports, when they time
-- out, and on any path added later; a failed result without a verdict is the only case, since
-- an agent that rescanned reports a verdict (which the server applies itself).
CREATE TRIGGER fix_verification_on_task_failed
AFTER UPDATE OF state ON agent_tasks
WHEN NEW.state = 'failed' AND NEW.kind = 'verify_fix'
    AND json_extract(NEW.result, '$.verdict') IS NULL
BEGIN
    UPDATE fix_verifications
        SET state = 'failed', completed_at = NEW.finished_at,
            reason = COALESCE(json_extract(NEW.result, '$.message'), 'the rescan task failed')
        WHERE id = json_extract(NEW.spec, '$.verification_id') AND state = 'pending';
END;

-- Verifications left pending by tasks that failed before this migration.
UPDATE fix_verifications
    SET state = 'failed',
        completed_at = (SELECT finished_at FROM agent_tasks
                        WHERE kind = 'verify_fix' AND state = 'failed'
                          AND json_extract(spec, '$.verification_id') = fix_verifications.id),
        reason = (SELECT COALESCE(json_extract(result, '$.message'), 'the rescan task failed')
                  FROM agent_tasks
                  WHERE kind = 'verify_fix' AND state = 'failed'
                    AND json_extract(spec, '$.verification_id') = fix_verifications.id)
    WHERE state = 'pending' AND id IN (
        SELECT json_extract(spec, '$.verification_id') FROM agent_tasks
        WHERE kind = 'verify_fix' AND state = 'failed'
          AND json_extract(result, '$.verdict') IS NULL);
