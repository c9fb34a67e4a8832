"""Leads: import, profiles and their place in campaigns."""
