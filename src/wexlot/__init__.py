"""WeXlot: a self-hosted CRM with multi-machine real-time sync."""

__version__ = "0.1.0"
