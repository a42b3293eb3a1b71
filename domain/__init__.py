"""The write side of prepmeet: aggregates, their events and the application service."""
