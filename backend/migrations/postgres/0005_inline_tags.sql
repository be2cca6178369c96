-- Each task's tags, in order, beside the task: a list page reads them with its rows instead of
-- through a subquery per row, which cost more than the rest of the page. task_tags stays the
-- index of the tag filter; every write keeps both in step.
ALTER TABLE tasks ADD COLUMN tags TEXT[] NOT NULL DEFAULT '{}';
UPDATE tasks SET tags = ARRAY(SELECT tag FROM task_tags WHERE task_id = tasks.id ORDER BY position);

-- A list page's order (created_at, then id) straight from the index: the (user_id, created_at)
-- index left an incremental sort per page.
CREATE INDEX tasks_user_created_id ON tasks (user_id, created_at, id);
DROP INDEX tasks_user_created;
