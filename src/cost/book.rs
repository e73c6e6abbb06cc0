//! The price book the ingest role prices steps with: the `model_prices` table held in memory,
//! loaded on the first write that needs it (the ingest state's `price_book`), reloaded after
//! every change through this process's routes and every [`REFRESH`] (changes by another ingest
//! replica, or by SQL).

use std::sync::{Arc, RwLock};
use std::time::Duration;

use time::OffsetDateTime;
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

/// Prices steps with one book, looking each model's price entry up once (a run or a request
/// repeats a few models; the lookup was 1 % of the server's CPU under batch load).
pub struct Pricer<'b> {
    book: &'b PriceBook,
    seen: Vec<(String, Option<&'b [Period]>)>,
}

impl<'b> Pricer<'b> {
    pub fn new(book: &'b PriceBook) -> Self {
        Pricer {
            book,
            seen: Vec::new(),
        }
    }

    /// What a step of `model` that started at `at` cost, in nano-dollars; none without a
    /// model, a price or token counts.
    pub fn cost(&mut self, model: Option<&str>, at: OffsetDateTime, tokens: Tokens) -> Option<i64> {
        let model = model?;
        let periods = match self.seen.iter().find(|(m, _)| m == model) {
            Some((_, periods)) => *periods,
            None => {
                let periods = self.book.periods(model);
                self.seen.push((model.to_owned(), periods));
                periods
            }
        };
        PriceBook::valid_at(periods?, at)?.cost_nanos(tokens)
    }
}

/// Prices each of `steps` at its start: its `cost_nanos`.
pub fn price_steps<'a>(book: &PriceBook, steps: impl IntoIterator<Item = &'a mut NewStep>) {
    let mut pricer = Pricer::new(book);
    for s in steps {
        s.cost_nanos = pricer.cost(s.model.as_deref(), s.started_at, s.tokens());
    }
}
