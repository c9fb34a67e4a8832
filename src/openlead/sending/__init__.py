"""Sending: mailboxes, the dispatcher and SMTP delivery."""
