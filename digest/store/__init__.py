"""The SQLite store (kernel): opening the database, transactions, time stamps, migrations.

Entry points: :func:`digest.store.database.database.open_store` (open, migrate) and
:func:`digest.store.database.database.transaction` (one immediate write transaction).

- ``database`` — opening the file (WAL, busy timeout, foreign keys, its mode), the
  transaction helper, UTC time stamps (``utcnow``, ``iso``, ``from_iso``), the first
  migrations (m001–m008) and :func:`~digest.store.database.database.migrate_store`.
- ``migrations`` — every later migration, one function each, in order (add yours at the end).

Imports nothing above :mod:`digest.errors`. This module defines nothing.
"""
