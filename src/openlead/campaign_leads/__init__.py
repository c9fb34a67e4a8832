"""Leads in a campaign: listing by status, status changes, activity, statistics, export."""
