-- Model prices (docs/cost.md): what a million tokens of a model cost, in periods. A row is a
-- model name, or a prefix pattern ending in `*` (`gpt-4o-mini*`; the longest match wins), and
-- its prices from `valid_from` until the model's next period. A PUT adds a period; history is
-- kept, so a step is priced at the price valid when it started.
--
-- The rows `source = 'default'` are the shipped defaults: the providers' list prices for text
-- input and output (and cached input where listed), shortest-context tier, as they stood in
-- mid-2025, written from the providers' price pages as the maintainers knew them (the build
-- machine cannot fetch them), each valid from 2020-01-01 so that older data is priced too. They
-- are data, not code: an operator changes them with `PUT /v1/model-prices/{model}` or the
-- configuration (docs/cost.md), and a later migration never overwrites an operator's row.

CREATE TABLE model_prices (
    model                 varchar(255) NOT NULL
        CHECK (length(model) > 0 AND model <> '*'
               AND (strpos(model, '*') = 0 OR strpos(model, '*') = length(model))),
    input_per_mtok        numeric(18, 9) NOT NULL CHECK (input_per_mtok >= 0),
    output_per_mtok       numeric(18, 9) NOT NULL CHECK (output_per_mtok >= 0),
    cached_input_per_mtok numeric(18, 9) CHECK (cached_input_per_mtok >= 0),
    reasoning_per_mtok    numeric(18, 9) CHECK (reasoning_per_mtok >= 0),
    currency              char(3) NOT NULL DEFAULT 'USD' CHECK (currency = 'USD'),
    valid_from            timestamptz NOT NULL,
    source                varchar(10) NOT NULL DEFAULT 'operator'
        CHECK (source IN ('default', 'operator', 'config')),
    created_at            timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model, valid_from)
);

INSERT INTO model_prices (model, input_per_mtok, output_per_mtok, cached_input_per_mtok, valid_from, source)
SELECT m, i, o, c, '2020-01-01T00:00:00Z', 'default'
FROM (VALUES
    -- OpenAI
    ('gpt-4o*',                  2.50,  10.00, 1.25),
    ('gpt-4o-mini*',             0.15,   0.60, 0.075),
    ('gpt-4.1*',                 2.00,   8.00, 0.50),
    ('gpt-4.1-mini*',            0.40,   1.60, 0.10),
    ('gpt-4.1-nano*',            0.10,   0.40, 0.025),
    ('gpt-4-turbo*',            10.00,  30.00, NULL),
    ('gpt-3.5-turbo*',           0.50,   1.50, NULL),
    ('o1*',                     15.00,  60.00, 7.50),
    ('o1-mini*',                 1.10,   4.40, 0.55),
    ('o3*',                      2.00,   8.00, 0.50),
    ('o3-mini*',                 1.10,   4.40, 0.55),
    ('o4-mini*',                 1.10,   4.40, 0.275),
    ('text-embedding-3-small*',  0.02,   0.00, NULL),
    ('text-embedding-3-large*',  0.13,   0.00, NULL),
    ('text-embedding-ada-002*',  0.10,   0.00, NULL),
    -- Anthropic (cached input: cache reads)
    ('claude-3-haiku*',          0.25,   1.25, 0.03),
    ('claude-3-5-haiku*',        0.80,   4.00, 0.08),
    ('claude-3-5-sonnet*',       3.00,  15.00, 0.30),
    ('claude-3-7-sonnet*',       3.00,  15.00, 0.30),
    ('claude-sonnet-4*',         3.00,  15.00, 0.30),
    ('claude-3-opus*',          15.00,  75.00, 1.50),
    ('claude-opus-4*',          15.00,  75.00, 1.50),
    -- Google (prompts up to 128k / 200k tokens)
    ('gemini-1.5-flash*',        0.075,  0.30, NULL),
    ('gemini-1.5-pro*',          1.25,   5.00, NULL),
    ('gemini-2.0-flash*',        0.10,   0.40, NULL),
    ('gemini-2.0-flash-lite*',   0.075,  0.30, NULL),
    ('gemini-2.5-flash*',        0.30,   2.50, NULL),
    ('gemini-2.5-pro*',          1.25,  10.00, NULL),
    -- Mistral
    ('mistral-large*',           2.00,   6.00, NULL)
) AS d (m, i, o, c);
