"""Campaigns: services for the state machine (``services``), runs (``runs``), schedules
(``schedules``) and planning templated messages into the ledger (``planning``)."""
