#!/bin/sh
# Runs once, when the postgres container initialises its volume: creates the read-only login the
# query role uses and lets it read every table the writer ($POSTGRES_USER) creates later.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<SQL
CREATE ROLE agenttracer_reader LOGIN PASSWORD '${READER_PASSWORD:-agenttracer_reader}';
GRANT CONNECT ON DATABASE "$POSTGRES_DB" TO agenttracer_reader;
GRANT USAGE ON SCHEMA public TO agenttracer_reader;
ALTER DEFAULT PRIVILEGES FOR ROLE "$POSTGRES_USER" IN SCHEMA public GRANT SELECT ON TABLES TO agenttracer_reader;
SQL
