//! Conversations and their messages in the database (both engines), so the server keeps no
//! state: any replica answers the next message, and a restart loses nothing.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use sqlx::Row;
use utoipa::ToSchema;

use super::tools::Action;
use crate::{
    db::{Db, now_millis, rfc3339},
    error::{ApiError, ApiResult},
};

/// Most conversations `GET /conversations` returns (the newest).
pub const MAX_LISTED: i64 = 100;
/// Longest conversation title, in characters (taken from its first message).
const TITLE_CHARS: usize = 80;

/// A conversation as listed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConversationSummary {
    /// Numeric id.
    pub id: i64,
    /// The start of its first message.
    pub title: String,
    /// When it was started (RFC 3339, UTC).
    pub created_at: String,
    /// When its last message was stored (RFC 3339, UTC).
    pub updated_at: String,
}

/// The user's conversations, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationList {
    /// At most 100, most recently active first.
    pub items: Vec<ConversationSummary>,
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The person.
    User,
    /// The assistant.
    Assistant,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Assistant => "assistant",
        }
    }

    fn parse(stored: &str) -> ApiResult<Self> {
        match stored {
            "user" => Ok(Self::User),
            "assistant" => Ok(Self::Assistant),
            other => Err(ApiError::Internal(anyhow::anyhow!("stored message role {other:?}"))),
        }
    }
}

/// One message of a conversation.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Message {
    /// Numeric id (increasing within a conversation).
    pub id: i64,
    /// `user` or `assistant`.
    pub role: Role,
    /// The text.
    pub content: String,
    /// The tool calls an assistant message made (empty for user messages).
    pub actions: Vec<Action>,
    /// When it was stored (RFC 3339, UTC).
    pub created_at: String,
}

/// A conversation with its messages in order.
#[derive(Debug, Serialize, ToSchema)]
pub struct Conversation {
    /// Numeric id.
    pub id: i64,
    /// The start of its first message.
    pub title: String,
    /// When it was started (RFC 3339, UTC).
    pub created_at: String,
    /// When its last message was stored (RFC 3339, UTC).
    pub updated_at: String,
    /// Oldest first.
    pub messages: Vec<Message>,
}

fn not_found(id: i64) -> ApiError {
    ApiError::NotFound(format!("conversation {id} does not exist"))
}

type SummaryRow = (i64, String, i64, i64);
type MessageRow = (i64, String, String, Option<String>, i64);

fn summary((id, title, created_at, updated_at): SummaryRow) -> ConversationSummary {
    ConversationSummary {
        id,
        title,
        created_at: rfc3339(created_at),
        updated_at: rfc3339(updated_at),
    }
}

fn message((id, role, content, actions, created_at): MessageRow) -> ApiResult<Message> {
    let actions = match actions {
        Some(json) => serde_json::from_str(&json)
            .map_err(|err| ApiError::Internal(anyhow::Error::new(err).context("stored chat actions are unreadable")))?,
        None => Vec::new(),
    };
    Ok(Message {
        id,
        role: Role::parse(&role)?,
        content,
        actions,
        created_at: rfc3339(created_at),
    })
}

const LIST_SQLITE: &str = "SELECT id, title, created_at, updated_at FROM conversations WHERE user_id = ?1 \
     ORDER BY updated_at DESC, id DESC LIMIT ?2";
const LIST_POSTGRES: &str = "SELECT id, title, created_at, updated_at FROM conversations WHERE user_id = $1 \
     ORDER BY updated_at DESC, id DESC LIMIT $2";

/// This user's conversations, most recently active first.
pub async fn list(db: &Db, user_id: i64) -> ApiResult<ConversationList> {
    let rows: Vec<SummaryRow> = match db {
        Db::Sqlite(db) => db.read(|conn| {
            let mut select = conn.prepare_cached(LIST_SQLITE)?;
            let rows = select.query_map(params![user_id, MAX_LISTED], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })?,
        Db::Postgres(db) => {
            sqlx::query_as(LIST_POSTGRES)
                .bind(user_id)
                .bind(MAX_LISTED)
                .fetch_all(db.pool())
                .await?
        }
    };
    Ok(ConversationList {
        items: rows.into_iter().map(summary).collect(),
    })
}

/// One of this user's conversations with its messages; someone else's is "not found".
pub async fn get(db: &Db, user_id: i64, id: i64) -> ApiResult<Conversation> {
    let (head, rows): (Option<SummaryRow>, Vec<MessageRow>) = match db {
        Db::Sqlite(db) => db.read(|conn| {
            let head = conn
                .prepare_cached(
                    "SELECT id, title, created_at, updated_at FROM conversations WHERE id = ?1 AND user_id = ?2",
                )?
                .query_row(params![id, user_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .optional()?;
            let mut select = conn.prepare_cached(
                "SELECT id, role, content, actions, created_at FROM chat_messages WHERE conversation_id = ?1 ORDER BY id",
            )?;
            let rows = select
                .query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?
                .collect::<rusqlite::Result<_>>()?;
            Ok((head, rows))
        })?,
        Db::Postgres(db) => {
            let head = sqlx::query_as(
                "SELECT id, title, created_at, updated_at FROM conversations WHERE id = $1 AND user_id = $2",
            )
            .bind(id)
            .bind(user_id)
            .fetch_optional(db.pool())
            .await?;
            let rows = sqlx::query_as(
                "SELECT m.id, m.role, m.content, m.actions, m.created_at FROM chat_messages m \
                 JOIN conversations c ON c.id = m.conversation_id \
                 WHERE m.conversation_id = $1 AND c.user_id = $2 ORDER BY m.id",
            )
            .bind(id)
            .bind(user_id)
            .fetch_all(db.pool())
            .await?;
            (head, rows)
        }
    };
    let head = summary(head.ok_or_else(|| not_found(id))?);
    Ok(Conversation {
        id: head.id,
        title: head.title,
        created_at: head.created_at,
        updated_at: head.updated_at,
        messages: rows.into_iter().map(message).collect::<ApiResult<_>>()?,
    })
}

/// A user message and the assistant's answer, to store together.
pub struct Turn {
    /// What the user said.
    pub message: String,
    /// What the assistant answered.
    pub reply: String,
    /// The tool calls the answer made.
    pub actions: Vec<Action>,
}

/// Stores a turn in `conversation` (which must be this user's), or in a new conversation titled
/// after the message; returns the conversation's id. Both messages are written in one
/// transaction.
pub async fn save_turn(db: &Db, user_id: i64, conversation: Option<i64>, turn: Turn) -> ApiResult<i64> {
    let actions = serde_json::to_string(&turn.actions)
        .map_err(|err| ApiError::Internal(anyhow::Error::new(err).context("serialising chat actions")))?;
    let title: String = turn.message.chars().take(TITLE_CHARS).collect();
    let now = now_millis();
    match db {
        Db::Sqlite(db) => {
            db.write(move |conn| {
                let id = match conversation {
                    Some(id) => {
                        let touched = conn
                            .prepare_cached("UPDATE conversations SET updated_at = ?1 WHERE id = ?2 AND user_id = ?3")?
                            .execute(params![now, id, user_id])?;
                        if touched == 0 {
                            return Err(not_found(id));
                        }
                        id
                    }
                    None => conn
                        .prepare_cached(
                            "INSERT INTO conversations (user_id, title, created_at, updated_at) \
                             VALUES (?1, ?2, ?3, ?3) RETURNING id",
                        )?
                        .query_row(params![user_id, title, now], |r| r.get(0))?,
                };
                let mut insert = conn.prepare_cached(
                    "INSERT INTO chat_messages (conversation_id, role, content, actions, created_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?;
                insert.execute(params![id, Role::User.as_str(), turn.message, None::<String>, now])?;
                insert.execute(params![id, Role::Assistant.as_str(), turn.reply, actions, now])?;
                Ok(id)
            })
            .await
        }
        Db::Postgres(db) => {
            let mut tx = db.pool().begin().await?;
            let id: i64 = match conversation {
                Some(id) => {
                    let touched = sqlx::query("UPDATE conversations SET updated_at = $1 WHERE id = $2 AND user_id = $3")
                        .bind(now)
                        .bind(id)
                        .bind(user_id)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    if touched == 0 {
                        return Err(not_found(id));
                    }
                    id
                }
                None => sqlx::query(
                    "INSERT INTO conversations (user_id, title, created_at, updated_at) VALUES ($1, $2, $3, $3) RETURNING id",
                )
                .bind(user_id)
                .bind(&title)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?,
            };
            sqlx::query(
                "INSERT INTO chat_messages (conversation_id, role, content, actions, created_at) \
                 VALUES ($1, 'user', $2, NULL, $4), ($1, 'assistant', $3, $5, $4)",
            )
            .bind(id)
            .bind(&turn.message)
            .bind(&turn.reply)
            .bind(now)
            .bind(&actions)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(id)
        }
    }
}

/// Deletes one of this user's conversations and its messages.
pub async fn delete(db: &Db, user_id: i64, id: i64) -> ApiResult<()> {
    let deleted = match db {
        Db::Sqlite(db) => {
            db.write(move |conn| {
                // Messages go explicitly, so deleting does not depend on the foreign-key setting.
                conn.prepare_cached(
                    "DELETE FROM chat_messages WHERE conversation_id IN \
                     (SELECT id FROM conversations WHERE id = ?1 AND user_id = ?2)",
                )?
                .execute([id, user_id])?;
                Ok(conn
                    .prepare_cached("DELETE FROM conversations WHERE id = ?1 AND user_id = ?2")?
                    .execute([id, user_id])? as u64)
            })
            .await?
        }
        Db::Postgres(db) => sqlx::query("DELETE FROM conversations WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
            .execute(db.pool())
            .await?
            .rows_affected(),
    };
    if deleted == 0 {
        return Err(not_found(id));
    }
    Ok(())
}
