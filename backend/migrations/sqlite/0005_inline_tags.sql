-- Each task's tags, comma-joined in order ('' for none), beside the task: a list page reads
-- them with its rows instead of through a subquery per row, which cost more than the rest of the
-- page. task_tags stays the index of the tag filter; every write keeps both in step.
ALTER TABLE tasks ADD COLUMN tags TEXT NOT NULL DEFAULT '';
UPDATE tasks SET tags = COALESCE(
    (SELECT group_concat(tag, ',' ORDER BY position) FROM task_tags WHERE task_id = tasks.id), '');
