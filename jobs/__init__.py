"""Ingestion jobs: files queued by the admin page (or `erag`), processed by worker processes.

- `board`: one row per file in the SQL database with its visible status, lease and attempts.
- `queue`: the huey queue that hands job ids to workers (SQLite file by default, Redis to scale out).
- `spool`: prepared index writes, for the one process that holds the embedded index.
- `worker`: claims a job, parses, tags and embeds with a heartbeat, then writes or spools the result.
- `writer`: applies spooled writes to the embedded index with the pipeline's commit protocol.
- `uploads`: upload safety: checks uploaded files and stages the accepted ones inside the upload area.
- `service`: the app's side: submit uploads, start workers beside the app, run the writer and the reaper.
"""
