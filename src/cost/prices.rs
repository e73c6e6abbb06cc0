//! The `model_prices` table: its periods, listed, added (or replaced at the same `valid_from`)
//! and deleted. Prices are `numeric` in the table and `f64` here, read back as sent (a price has
//! at most 9 decimals; the shortest decimal of an `f64` is what PostgreSQL stores).

use diesel::QueryableByName;
use diesel::result::QueryResult;
use diesel::sql_types::{Bool, Double, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::model::cost::{NewPrice, Period, PriceBook};

/// A price period, as every route answers it.
#[derive(Clone, Debug, PartialEq, Serialize, QueryableByName, ToSchema)]
pub struct Price {
    /// A model's name, or a prefix pattern ending in `*`.
    #[diesel(sql_type = Text)]
    pub model: String,
    /// USD per million input tokens (those not read from a cache).
    #[diesel(sql_type = Double)]
    pub input_per_mtok: f64,
    /// USD per million output tokens.
    #[diesel(sql_type = Double)]
    pub output_per_mtok: f64,
    /// USD per million cached input tokens; null: priced as input.
    #[diesel(sql_type = Nullable<Double>)]
    pub cached_input_per_mtok: Option<f64>,
    /// USD per million reasoning tokens; null: priced as output.
    #[diesel(sql_type = Nullable<Double>)]
    pub reasoning_per_mtok: Option<f64>,
    #[diesel(sql_type = Text)]
    pub currency: String,
    /// From when it applies, until the model's next period.
    #[diesel(sql_type = Timestamptz)]
    #[serde(with = "time::serde::rfc3339")]
    pub valid_from: OffsetDateTime,
    /// `default` (shipped), `operator` (the API) or `config`.
    #[diesel(sql_type = Text)]
    pub source: String,
    #[diesel(sql_type = Timestamptz)]
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// The columns of a [`Price`], as it reads them.
const COLUMNS: &str = "model::text AS model, input_per_mtok::float8 AS input_per_mtok, \
     output_per_mtok::float8 AS output_per_mtok, \
     cached_input_per_mtok::float8 AS cached_input_per_mtok, \
     reasoning_per_mtok::float8 AS reasoning_per_mtok, currency::text AS currency, valid_from, \
     source::text AS source, created_at";

/// Every period (of `model` only, when given), by model and then time.
pub async fn list(conn: &mut AsyncPgConnection, model: Option<&str>) -> QueryResult<Vec<Price>> {
    diesel::sql_query(format!(
        "SELECT {COLUMNS} FROM model_prices WHERE ($1::text IS NULL OR model = $1) \
         ORDER BY model, valid_from"
    ))
    .bind::<Nullable<Text>, _>(model)
    .load(conn)
    .await
}

#[derive(QueryableByName)]
struct Put {
    #[diesel(embed)]
    price: Price,
    #[diesel(sql_type = Bool)]
    inserted: bool,
}

/// Adds the period `new` (from now when it names no time), or replaces the model's period that
/// starts at the same time; `source` says who did. Returns it, and whether it is new.
pub async fn put(
    conn: &mut AsyncPgConnection,
    new: &NewPrice,
    source: &str,
) -> QueryResult<(Price, bool)> {
    let put: Put = diesel::sql_query(format!(
        "INSERT INTO model_prices AS p (model, input_per_mtok, output_per_mtok, \
         cached_input_per_mtok, reasoning_per_mtok, valid_from, source) \
         VALUES ($1, $2::numeric, $3::numeric, $4::numeric, $5::numeric, coalesce($6, now()), $7) \
         ON CONFLICT (model, valid_from) DO UPDATE SET input_per_mtok = EXCLUDED.input_per_mtok, \
         output_per_mtok = EXCLUDED.output_per_mtok, \
         cached_input_per_mtok = EXCLUDED.cached_input_per_mtok, \
         reasoning_per_mtok = EXCLUDED.reasoning_per_mtok, source = EXCLUDED.source, \
         created_at = now() \
         RETURNING {COLUMNS}, (p.xmax = 0) AS inserted"
    ))
    .bind::<Text, _>(&new.model)
    .bind::<Double, _>(new.input_per_mtok)
    .bind::<Double, _>(new.output_per_mtok)
    .bind::<Nullable<Double>, _>(new.cached_input_per_mtok)
    .bind::<Nullable<Double>, _>(new.reasoning_per_mtok)
    .bind::<Nullable<Timestamptz>, _>(new.valid_from)
    .bind::<Text, _>(source)
    .get_result(conn)
    .await?;
    Ok((put.price, put.inserted))
}

/// Deletes `model`'s periods (only the one starting at `valid_from`, when given); returns how
/// many.
pub async fn delete(
    conn: &mut AsyncPgConnection,
    model: &str,
    valid_from: Option<OffsetDateTime>,
) -> QueryResult<usize> {
    diesel::sql_query(
        "DELETE FROM model_prices WHERE model = $1 AND ($2::timestamptz IS NULL OR valid_from = $2)",
    )
    .bind::<Text, _>(model)
    .bind::<Nullable<Timestamptz>, _>(valid_from)
    .execute(conn)
    .await
}

#[derive(QueryableByName)]
struct BookRow {
    #[diesel(sql_type = Text)]
    model: String,
    #[diesel(sql_type = Timestamptz)]
    valid_from: OffsetDateTime,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    input: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    output: i64,
    #[diesel(sql_type = Nullable<diesel::sql_types::BigInt>)]
    cached_input: Option<i64>,
    #[diesel(sql_type = Nullable<diesel::sql_types::BigInt>)]
    reasoning: Option<i64>,
}

/// The whole table as a [`PriceBook`], its prices read exactly as nano-dollars per million
/// tokens (the column has 9 decimals).
pub async fn book(conn: &mut AsyncPgConnection) -> QueryResult<PriceBook> {
    let rows: Vec<BookRow> = diesel::sql_query(
        "SELECT model::text AS model, valid_from, \
         (input_per_mtok * 1000000000)::int8 AS input, \
         (output_per_mtok * 1000000000)::int8 AS output, \
         (cached_input_per_mtok * 1000000000)::int8 AS cached_input, \
         (reasoning_per_mtok * 1000000000)::int8 AS reasoning FROM model_prices",
    )
    .load(conn)
    .await?;
    Ok(PriceBook::new(rows.into_iter().map(|r| {
        let period = Period {
            valid_from: r.valid_from,
            input: r.input,
            output: r.output,
            cached_input: r.cached_input,
            reasoning: r.reasoning,
        };
        (r.model, period)
    })))
}
