"""openlead: self-hosted, SmartLead-compatible lead management and cold outreach."""

__version__ = "0.1.0"
