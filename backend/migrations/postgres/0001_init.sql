-- Timestamps are milliseconds since the Unix epoch (UTC); dates are ISO 'YYYY-MM-DD' text.
-- The same shapes exist in migrations/sqlite so one set of queries serves both engines.
CREATE TABLE users (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email         TEXT   NOT NULL UNIQUE,
    name          TEXT,
    password_hash TEXT   NOT NULL,
    created_at    BIGINT NOT NULL
);

CREATE TABLE tasks (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title        TEXT   NOT NULL,
    description  TEXT,
    priority     TEXT   NOT NULL DEFAULT 'medium' CHECK (priority IN ('low', 'medium', 'high')),
    due_date     TEXT,
    completed_at BIGINT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX tasks_user_created ON tasks (user_id, created_at);

CREATE TABLE task_tags (
    task_id  BIGINT  NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    tag      TEXT    NOT NULL,
    PRIMARY KEY (task_id, tag)
);
CREATE INDEX task_tags_tag ON task_tags (tag);
