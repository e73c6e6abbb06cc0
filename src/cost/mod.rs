//! Cost (docs/cost.md): the model price table, read by the query role and managed through the
//! ingest role and the configuration.

pub mod book;
pub mod prices;
pub mod reprice;

pub use book::{LiveBook, Pricer, price_steps};
