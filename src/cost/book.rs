//! The price book the ingest role prices steps with: the `model_prices` table held in memory,
//! loaded on the first write that needs it (the ingest state's `price_book`), reloaded after
//! every change through this process's routes and every [`REFRESH`] (changes by another ingest
//! replica, or by SQL).

use std::sync::atomic::{AtomicU64, Ordering};
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
///
/// Reads race: a periodic reload that read the table just before a `PUT` committed may finish
/// after the `PUT`'s own reload, and would then put the older book back for up to [`REFRESH`].
/// So each read takes a [`Ticket`] before it starts, and a book read later (a larger ticket)
/// is never replaced by one read earlier: a read that starts after a commit sees it.
#[derive(Clone, Default)]
pub struct LiveBook {
    book: Arc<RwLock<Option<Held>>>,
    tickets: Arc<AtomicU64>,
}

/// The book held, with the ticket of its read.
type Held = (u64, Arc<PriceBook>);

/// When a read of the table started, relative to the others.
#[derive(Clone, Copy, Debug)]
pub struct Ticket(u64);

impl LiveBook {
    /// The book, once loaded.
    pub fn loaded(&self) -> Option<Arc<PriceBook>> {
        let book = self.book.read().unwrap_or_else(|e| e.into_inner());
        book.as_ref().map(|(_, b)| b.clone())
    }

    /// Take before reading the table for [`Self::set`].
    pub fn ticket(&self) -> Ticket {
        Ticket(self.tickets.fetch_add(1, Ordering::SeqCst))
    }

    /// Holds `book`, read under `ticket`, from now on, unless a book read after it is held
    /// already; returns the book held.
    pub fn set(&self, ticket: Ticket, book: PriceBook) -> Arc<PriceBook> {
        let mut held = self.book.write().unwrap_or_else(|e| e.into_inner());
        match &*held {
            Some((newer, current)) if *newer > ticket.0 => current.clone(),
            _ => {
                let book = Arc::new(book);
                *held = Some((ticket.0, book.clone()));
                book
            }
        }
    }

    /// Reloads the book every [`REFRESH`] until `stop`.
    pub async fn refresh(self, pool: PgPool, stop: CancellationToken) {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + REFRESH, REFRESH);
        while stop.run_until_cancelled(tick.tick()).await.is_some() {
            let ticket = self.ticket();
            let read = async {
                let mut conn = pool.get().await?;
                Ok::<_, crate::db::DbError>(super::prices::book(&mut conn).await?)
            };
            match read.await {
                Ok(book) => {
                    self.set(ticket, book);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::cost::Period;

    fn book_with(model: Option<&str>) -> PriceBook {
        let at = time::macros::datetime!(2026-01-01 0:00 UTC);
        PriceBook::new(model.map(|m| (m.to_owned(), Period::from_usd(at, 1.0, 2.0, None, None))))
    }

    #[test]
    fn a_book_read_earlier_never_replaces_one_read_later() {
        let live = LiveBook::default();
        // A periodic read starts, a PUT commits and its own read starts and lands, then the
        // periodic read (of the table before the PUT) lands: the PUT's book stays.
        let periodic = live.ticket();
        let after_put = live.ticket();
        live.set(after_put, book_with(Some("gpt-new")));
        let held = live.set(periodic, book_with(None));
        assert!(held.periods("gpt-new").is_some());
        assert!(live.loaded().unwrap().periods("gpt-new").is_some());
        // In order, each later read wins.
        let next = live.ticket();
        live.set(next, book_with(Some("gpt-next")));
        let loaded = live.loaded().unwrap();
        assert!(loaded.periods("gpt-next").is_some() && loaded.periods("gpt-new").is_none());
    }
}
