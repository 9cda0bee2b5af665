"""bia-acq: acquisition service for bioimpedance body-composition analyzers."""

__version__ = "0.1.0"
