-- The chat assistant's conversations and their messages, per user. Same shapes as
-- migrations/sqlite/0004_chat.sql. `actions` is the JSON array of the tool calls an assistant
-- message made ([{tool, arguments, result}]), NULL on user messages; stored as text so both
-- engines read it the same way.
CREATE TABLE conversations (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title      TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX conversations_user_updated ON conversations (user_id, updated_at);

CREATE TABLE chat_messages (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    conversation_id BIGINT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    role            TEXT   NOT NULL CHECK (role IN ('user', 'assistant')),
    content         TEXT   NOT NULL,
    actions         TEXT,
    created_at      BIGINT NOT NULL
);
CREATE INDEX chat_messages_conversation ON chat_messages (conversation_id, id);
