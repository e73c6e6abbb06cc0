//! The price book the ingest role prices steps with: the `model_prices` table held in memory,
//! loaded on the first write that needs it (the ingest state's `price_book`), reloaded after
//! every change through this process's routes and every [`REFRESH`] (changes by another ingest
//! replica, or by SQL).

use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::db::PgPool;
use crate::model::NewStep;
use crate::model::cost::{Period, PriceBook, Tokens};

/// How often the book is read again from the table.
pub const REFRESH: Duration = Duration::from_secs(10);

/// The shared book; none until first loaded.
#[derive(Clone, Default)]
pub struct LiveBook {
    book: Arc<RwLock<Option<Arc<PriceBook>>>>,
}

impl LiveBook {
    /// The book, once loaded.
    pub fn loaded(&self) -> Option<Arc<PriceBook>> {
        self.book.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Holds `book` from now on; returns it.
    pub fn set(&self, book: PriceBook) -> Arc<PriceBook> {
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
/// token counts. Each model's entry is looked up once (runs repeat a few models).
pub fn price_steps<'a>(book: &PriceBook, steps: impl IntoIterator<Item = &'a mut NewStep>) {
    let mut seen: Vec<(String, Option<&[Period]>)> = Vec::new();
    for s in steps {
        let Some(model) = s.model.as_deref() else {
            s.cost_nanos = None;
            continue;
        };
        let periods = match seen.iter().find(|(m, _)| m == model) {
            Some((_, periods)) => *periods,
            None => {
                let periods = book.periods(model);
                seen.push((model.to_owned(), periods));
                periods
            }
        };
        s.cost_nanos = periods
            .and_then(|p| PriceBook::valid_at(p, s.started_at))
            .and_then(|p| p.cost_nanos(s.tokens()));
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
