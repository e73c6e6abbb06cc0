-- A failure's metadata: what the client sent beside its code. An OTLP failure keeps the
-- `error.type` / `exception.type` (and HTTP status) it was given, as sent, while its code is
-- normalised (docs/api.md, OTLP); a native failure may send an object of its own. Adding a
-- column with a constant default rewrites no rows.
ALTER TABLE agent_failures
    ADD COLUMN metadata jsonb NOT NULL DEFAULT '{}'::jsonb
        CONSTRAINT agent_failures_metadata_object CHECK (jsonb_typeof(metadata) = 'object');
