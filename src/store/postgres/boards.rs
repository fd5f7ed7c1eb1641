//! Boards in PostgreSQL: the declared definitions, the scores of manual boards, and every
//! board's scores computed afresh from the rows it reads (for reconcile and seeding).

use chrono::{DateTime, Utc};

use super::Postgres;
use crate::domain::boards::{BoardDef, Score, Window, TRADE};

/// One member's score in one period of a board, as PostgreSQL computes it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct BoardScore {
    /// The value of the board's `by` attribute (None for a board not split).
    pub part: Option<String>,
    /// Empty for an all-time board.
    pub period: String,
    pub member: String,
    pub score: f64,
}

/// The SQL naming the period of the instant in `column`, as [`Window`] names it.
fn period_sql(window: Window, column: &str) -> String {
    let format = match window {
        Window::All => return "''".into(),
        Window::Day => "YYYY-MM-DD",
        Window::Week => "IYYY-\"W\"IW",
        Window::Month => "YYYY-MM",
    };
    format!("to_char({column} AT TIME ZONE 'UTC', '{format}')")
}

impl Postgres {
    /// Replaces the declared boards with `boards`; returns how many definitions were
    /// added, changed or removed.
    pub async fn apply_boards(
        &self,
        boards: &[BoardDef],
        version: i32,
    ) -> Result<u64, crate::Error> {
        self.calls
            .run::<u64, sqlx::Error, _>("apply_boards", async {
                let mut tx = self.pool.begin().await?;
                let mut changed = 0;
                for board in boards {
                    let definition = serde_json::to_value(board)
                        .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
                    let done = sqlx::query(
                        "INSERT INTO boards (name, definition, version) VALUES ($1, $2, $3) \
                         ON CONFLICT (name) DO UPDATE SET definition = EXCLUDED.definition, \
                         version = EXCLUDED.version, updated_at = now() \
                         WHERE boards.definition IS DISTINCT FROM EXCLUDED.definition",
                    )
                    .bind(&board.name)
                    .bind(definition)
                    .bind(version)
                    .execute(&mut *tx)
                    .await?;
                    changed += done.rows_affected();
                }
                let names: Vec<&str> = boards.iter().map(|b| b.name.as_str()).collect();
                let removed = sqlx::query("DELETE FROM boards WHERE name <> ALL($1)")
                    .bind(&names)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(changed + removed.rows_affected())
            })
            .await
    }

    /// The boards in force, by name.
    pub async fn boards(&self) -> Result<Vec<BoardDef>, crate::Error> {
        self.calls
            .run::<Vec<BoardDef>, sqlx::Error, _>("boards", async {
                let rows: Vec<(sqlx::types::Json<BoardDef>,)> =
                    sqlx::query_as("SELECT definition FROM boards ORDER BY name")
                        .fetch_all(&self.pool)
                        .await?;
                Ok(rows.into_iter().map(|(def,)| def.0).collect())
            })
            .await
    }

    /// Sets a member's score on a manual board (the record reconcile rebuilds Redis from).
    pub async fn set_board_score(
        &self,
        board: &str,
        period: &str,
        member: &str,
        score: f64,
    ) -> Result<(), crate::Error> {
        self.calls
            .run::<(), sqlx::Error, _>("set_board_score", async {
                sqlx::query(
                    "INSERT INTO board_scores (board, period, member, score) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (board, period, member) \
                     DO UPDATE SET score = EXCLUDED.score, updated_at = now()",
                )
                .bind(board)
                .bind(period)
                .bind(member)
                .bind(score)
                .execute(&self.pool)
                .await?;
                Ok(())
            })
            .await
    }

    /// Every score of `board` in its kept periods at `now`, computed from the rows it
    /// reads: trades, events of its kinds, or (manual boards) the scores set on it.
    pub async fn board_scores(
        &self,
        board: &BoardDef,
        now: DateTime<Utc>,
    ) -> Result<Vec<BoardScore>, crate::Error> {
        let since = board.kept_since(now);
        let until = board.next_rollover(now);
        let kept: Vec<String> = board.kept(now).into_iter().map(|p| p.name).collect();
        let sql = scores_sql(board);
        self.calls
            .run::<Vec<BoardScore>, sqlx::Error, _>("board_scores", async {
                let query = sqlx::query_as::<_, BoardScore>(&sql);
                let query = if board.is_manual() {
                    query.bind(&board.name).bind(&kept)
                } else {
                    query
                        .bind(since)
                        .bind(until)
                        .bind(&board.reads)
                        .bind(board.by.as_deref())
                };
                query.fetch_all(&self.pool).await
            })
            .await
    }
}

/// The query computing a board's scores. Parameters: for manual boards the board's name
/// and its kept periods; otherwise the first and the last-excluded instant kept (either
/// may be null) and the kinds read.
fn scores_sql(board: &BoardDef) -> String {
    if board.is_manual() {
        return "SELECT NULL::text AS part, period, member, score FROM board_scores \
                WHERE board = $1 AND period = ANY($2)"
            .into();
    }
    let trades = board.reads.iter().any(|k| k == TRADE);
    let (amount, at, member, table, filter) = if trades {
        (
            "quantity * price",
            "executed_at",
            "user_id::text",
            "trades",
            // Binds $3 and $4 in both forms, so the parameters are the same.
            "cardinality($3::text[]) > 0 AND $4::text IS NULL",
        )
    } else {
        (
            "amount",
            "occurred_at",
            "subject_chain || ':' || subject",
            "events",
            "kind = ANY($3) AND ($4::text IS NULL OR attributes ? $4)",
        )
    };
    let part = if trades {
        "NULL::text"
    } else {
        "CASE WHEN $4::text IS NULL THEN NULL ELSE attributes ->> $4 END"
    };
    let (score, with_amount) = match board.score {
        Score::Sum => (format!("sum({amount})::float8"), true),
        Score::Max => (format!("max({amount})::float8"), true),
        Score::Count | Score::Manual => ("count(*)::float8".to_owned(), false),
    };
    let needs_amount = if with_amount && !trades {
        " AND amount IS NOT NULL"
    } else {
        ""
    };
    format!(
        "SELECT {part} AS part, {period} AS period, {member} AS member, {score} AS score \
         FROM {table} \
         WHERE {filter}{needs_amount} \
           AND ($1::timestamptz IS NULL OR {at} >= $1) \
           AND ($2::timestamptz IS NULL OR {at} < $2) \
         GROUP BY 1, 2, 3",
        period = period_sql(board.window, at),
    )
}
