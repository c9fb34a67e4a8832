"""Tracking: signed tokens and the public open, click and unsubscribe endpoints."""
