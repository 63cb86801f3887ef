"""The SQLite store (kernel): opening the database, transactions, time stamps, migrations.

Entry points: :func:`digest.store.database.database.open_store` (open, migrate) and
:func:`digest.store.database.database.transaction` (one immediate write transaction).

- ``database`` — opening the file (WAL, busy timeout, foreign keys, its mode), the
  transaction helper, UTC time stamps (``utcnow``, ``iso``, ``from_iso``), the first
  migrations (m001–m008) and :func:`~digest.store.database.database.migrate_store`.
- ``migrations`` — every later migration, one function each, in order (add yours at the end).
- ``db_lock`` — locks in the database: :func:`~digest.store.db_lock.serialize` (a check-then-write
  that holds across hosts on PostgreSQL) and the scheduler's lock for a process's lifetime.

Imports nothing above :mod:`digest.errors`. This module defines nothing.
"""
