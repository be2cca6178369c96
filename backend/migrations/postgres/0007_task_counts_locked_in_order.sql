-- The kept task counts (migration 6) lock their users' rows in id order before updating them.
-- Two create batches that share users (two backend pods, or two batches of one) could otherwise
-- each lock one of the rows the other needs, in whatever order each UPDATE's plan met them, and
-- deadlock: PostgreSQL then cancels one after deadlock_timeout (a second), and its creates run
-- one by one. Measured before this: 4 users creating on 16 connections, 0.6-2.1k creates/s and
-- a deadlock a second; in id order, none. Same trigger otherwise; the old one's callers are
-- unchanged, so backends of the release before keep working beside this one.
CREATE OR REPLACE FUNCTION tasks_counted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM 1 FROM users WHERE id IN (SELECT user_id FROM inserted) ORDER BY id FOR NO KEY UPDATE;
        UPDATE users SET task_count = users.task_count + changed.n
        FROM (SELECT user_id, COUNT(*) AS n FROM inserted GROUP BY user_id) AS changed
        WHERE users.id = changed.user_id;
    ELSE
        PERFORM 1 FROM users WHERE id IN (SELECT user_id FROM deleted) ORDER BY id FOR NO KEY UPDATE;
        UPDATE users SET task_count = users.task_count - changed.n
        FROM (SELECT user_id, COUNT(*) AS n FROM deleted GROUP BY user_id) AS changed
        WHERE users.id = changed.user_id;
    END IF;
    RETURN NULL;
END
$$;
