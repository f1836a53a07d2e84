"""The core: requests, jobs and their states, the fair queue and lineup, execution on a backend,
the journal and its SQLite store, recovery after a restart. Knows neither Discord nor HTTP serving.
"""
