"""The group's central PostgreSQL database: schema migrations and the offline-first sync.

``bia-acq sync`` reads a site's SQLite file read-only and pushes what the central
database lacks; the high-water marks live centrally, committed with the rows they
cover. psycopg 3 is an optional dependency (``pip install 'bia-acq[central]'``):
only this package imports it. See docs/central.md.
"""
