//! The ingest listener's routes: `POST /v1/runs`, `POST /v1/runs/batch`, `DELETE /v1/runs/{id}`
//! and OTLP (`POST /v1/traces`, and gRPC), on the writer pool of their [`IngestState`].

pub mod batch;
pub mod body;
mod drift;
pub mod group;
pub mod otlp;
mod prices;
pub mod retention;
mod runs;
mod state;

use actix_web::web;
use utoipa_actix_web::service_config::ServiceConfig;

pub use runs::REDACTED_HEADER;
pub use state::IngestState;

/// Mounts the ingest routes, with the state they run on.
pub fn configure(state: web::Data<IngestState>) -> impl FnOnce(&mut ServiceConfig) {
    move |cfg| {
        cfg.app_data(state)
            .service(batch::post_batch)
            .service(runs::post_run)
            .service(runs::delete_run);
        drift::configure(cfg);
        prices::configure(cfg);
        otlp::configure(cfg);
    }
}
