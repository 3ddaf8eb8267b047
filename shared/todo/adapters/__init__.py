"""Adapters: the database, the outbox relay and the event publishers."""
