"""Receipts: what comes back after a send (opens, clicks, provider webhooks, bounces, complaints,
SMS STOP/START) and the suppressions they make. Registers its outbound decoration with the ledger
(``ledger.outbound``) in ``NotificationsConfig.ready()``."""
