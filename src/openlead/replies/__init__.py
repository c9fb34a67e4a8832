"""Replies: each mailbox's inbox read over IMAP, and what a lead's answer does."""
