#!/bin/sh
# Runs once, when the postgres container initialises its volume. Creates the two logins the
# service uses, neither a superuser:
#   agenttracer_writer  owns the database (so it may create tables in public: migrations) and writes
#   agenttracer_reader  may only read, now and every table the writer creates later
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<SQL
CREATE ROLE agenttracer_writer LOGIN PASSWORD '${WRITER_PASSWORD:-agenttracer_writer}';
ALTER DATABASE "$POSTGRES_DB" OWNER TO agenttracer_writer;
CREATE ROLE agenttracer_reader LOGIN PASSWORD '${READER_PASSWORD:-agenttracer_reader}';
GRANT CONNECT ON DATABASE "$POSTGRES_DB" TO agenttracer_reader;
GRANT USAGE ON SCHEMA public TO agenttracer_reader;
ALTER DEFAULT PRIVILEGES FOR ROLE agenttracer_writer IN SCHEMA public GRANT SELECT ON TABLES TO agenttracer_reader;
SQL
