"""The database: connections, the writer's batching and COPY, migrations, and the embedded Postgres."""
