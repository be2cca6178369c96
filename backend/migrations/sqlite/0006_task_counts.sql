-- Each user's number of tasks, kept beside the user by triggers in the same transaction as the
-- write: an unfiltered list page reads its total from here instead of counting the user's tasks
-- on every page. Same shapes in migrations/postgres/0006_task_counts.sql.
ALTER TABLE users ADD COLUMN task_count INTEGER NOT NULL DEFAULT 0;
UPDATE users SET task_count = (SELECT COUNT(*) FROM tasks WHERE tasks.user_id = users.id);

CREATE TRIGGER tasks_counted_on_insert AFTER INSERT ON tasks
BEGIN
    UPDATE users SET task_count = task_count + 1 WHERE id = NEW.user_id;
END;
CREATE TRIGGER tasks_counted_on_delete AFTER DELETE ON tasks
BEGIN
    UPDATE users SET task_count = task_count - 1 WHERE id = OLD.user_id;
END;
