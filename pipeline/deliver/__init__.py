"""The deliver stage: a run folder's documents emailed to the schools (`send`), and PDF copies (`pdf`).

`send` (the orchestration: `send_run`, `send_with_config`, `SendSession`) uses `settings` (`EmailSettings`),
`manifest`, `prepare`, `template`, `message`, `smtp` (with `tls`) and `report`. Importing this package loads
none of them: the mail stack is loaded only when something is sent.
"""
