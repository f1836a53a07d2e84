"""The core: requests, jobs and their states, the fair queue and lineup, execution on a backend,
the journal and its SQLite store, recovery after a restart, and the Engine that opens it all from
Settings for every front door. A Job changes state only through its own methods; front doors ask
the JobQueue, never its dictionaries. Knows neither Discord nor HTTP serving.
"""
