//! The price book the ingest role prices steps with: the `model_prices` table held in memory,
//! loaded on the first write that needs it, reloaded after every change through this process's
//! routes and every [`REFRESH`] (changes by another ingest replica, or by SQL).

use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::db::PgPool;
use crate::error::ApiError;
use crate::model::NewStep;
use crate::model::cost::{PriceBook, Tokens};
use crate::state::Db;
use crate::store::spans::TraceUpdate;

/// How often the book is read again from the table.
pub const REFRESH: Duration = Duration::from_secs(10);

/// The shared book; none until first loaded.
#[derive(Clone, Default)]
pub struct LiveBook {
    book: Arc<RwLock<Option<Arc<PriceBook>>>>,
}

impl LiveBook {
    /// The book, read from the table first if it never was (a database that was down when the
    /// process started): a write is never priced with no book, which would leave it unpriced.
    pub async fn get(&self, db: &Db) -> Result<Arc<PriceBook>, ApiError> {
        if let Some(book) = self.loaded() {
            return Ok(book);
        }
        self.reload(db).await
    }

    fn loaded(&self) -> Option<Arc<PriceBook>> {
        self.book.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Reads the book from the table now (after a change through the routes).
    pub async fn reload(&self, db: &Db) -> Result<Arc<PriceBook>, ApiError> {
        let book = db
            .run(async |conn| Ok(super::prices::book(conn).await?))
            .await?;
        Ok(self.set(book))
    }

    fn set(&self, book: PriceBook) -> Arc<PriceBook> {
        let book = Arc::new(book);
        *self.book.write().unwrap_or_else(|e| e.into_inner()) = Some(book.clone());
        book
    }

    /// Reloads the book every [`REFRESH`] until `stop`.
    pub async fn refresh(self, pool: PgPool, stop: CancellationToken) {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + REFRESH, REFRESH);
        while stop.run_until_cancelled(tick.tick()).await.is_some() {
            let read = async {
                let mut conn = pool.get().await?;
                Ok::<_, crate::db::DbError>(super::prices::book(&mut conn).await?)
            };
            match read.await {
                Ok(book) => {
                    self.set(book);
                }
                Err(error) => tracing::warn!(%error, "model prices not reloaded; will retry"),
            }
        }
    }
}

/// Prices each of `steps` at its start: its `cost_nanos`, none without a model, a price or
/// token counts.
pub fn price_steps<'a>(book: &PriceBook, steps: impl IntoIterator<Item = &'a mut NewStep>) {
    for s in steps {
        s.cost_nanos = step_cost(book, s.model.as_deref(), s.started_at, &s.tokens());
    }
}

/// Prices each step of `traces` (spans' steps) as [`price_steps`] does.
pub fn price_spans<'a>(book: &PriceBook, traces: impl IntoIterator<Item = &'a mut TraceUpdate>) {
    for s in traces.into_iter().flat_map(|t| &mut t.steps) {
        let tokens = Tokens::counted(
            s.input_tokens,
            s.output_tokens,
            s.cached_input_tokens,
            s.reasoning_tokens,
        );
        s.cost_nanos = step_cost(book, s.model.as_deref(), s.started_at, &tokens);
    }
}

/// What a step of `model` that started at `at` cost, in nano-dollars.
pub fn step_cost(
    book: &PriceBook,
    model: Option<&str>,
    at: time::OffsetDateTime,
    tokens: &Tokens,
) -> Option<i64> {
    book.cost_nanos(model?, at, *tokens)
}
