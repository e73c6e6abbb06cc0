//! The ingest routes' state (`/v1/runs`, batches, deletes, OTLP over HTTP and gRPC): the writer
//! pool, the group committer in front of it, how bodies are read, and what validation accepts.

use std::sync::Arc;

use crate::config::Config;
use crate::cost::LiveBook;
use crate::db::PgPool;
use crate::error::ApiError;
use crate::model::cost::PriceBook;
use crate::model::input::Rules;
use crate::state::Db;

use super::body::BodyLimits;
use super::group::GroupCommit;

pub struct IngestState {
    pub config: Arc<Config>,
    /// The writer pool (`database.url`).
    pub db: Db,
    /// Group commit of single-run ingest.
    pub group: GroupCommit,
    /// How request bodies are read (size, deadline, the in-flight budget).
    pub bodies: BodyLimits,
    pub rules: Rules,
    /// The model prices steps are priced with (src/cost/book.rs).
    pub prices: LiveBook,
}

impl IngestState {
    /// The state of the ingest routes on the writer pool `pool`; starts the group committer's
    /// writer tasks on the current tokio runtime.
    pub fn start(config: Arc<Config>, pool: PgPool) -> IngestState {
        let db = Db::new(pool, &config.database);
        let group = GroupCommit::start(
            db.clone(),
            config.ingest.group_commit_writers,
            config.ingest.group_commit_max_runs,
        );
        IngestState {
            db,
            group,
            bodies: BodyLimits::new(&config.server),
            rules: Rules::from(config.as_ref()),
            prices: LiveBook::default(),
            config,
        }
    }

    /// The price book to price a write with: read from the table first if it never was (a
    /// database that was down when the process started), so a write is never priced with no
    /// book, which would leave it unpriced.
    pub async fn price_book(&self) -> Result<Arc<PriceBook>, ApiError> {
        match self.prices.loaded() {
            Some(book) => Ok(book),
            None => self.reload_prices().await,
        }
    }

    /// Reads the price book from the table now (after a change through the routes).
    pub async fn reload_prices(&self) -> Result<Arc<PriceBook>, ApiError> {
        let ticket = self.prices.ticket();
        let book = self
            .db
            .run(async |conn| Ok(crate::cost::prices::book(conn).await?))
            .await?;
        Ok(self.prices.set(ticket, book))
    }
}

/// What validation accepts: the limits of `[ingest]` and `privacy.mode`.
impl From<&Config> for Rules {
    fn from(config: &Config) -> Rules {
        let ingest = &config.ingest;
        Rules {
            max_steps: ingest.max_steps_per_run,
            max_metadata_depth: ingest.max_metadata_depth,
            max_metadata_bytes: ingest.max_metadata_bytes,
            max_string_chars: ingest.max_string_chars,
            privacy: config.privacy.mode,
        }
    }
}
