"""Tessera: a crowdsourcing marketplace backend for data labeling."""

__version__ = "0.1.0"
