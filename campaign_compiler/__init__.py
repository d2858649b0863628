"""Orchestrated marketing campaigns as code, compiled into dbt models."""

__version__ = "0.1.0"
