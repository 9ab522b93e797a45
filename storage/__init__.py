"""PostgreSQL through asyncpg: pool, migrations, embedded server, queries per aggregate."""
