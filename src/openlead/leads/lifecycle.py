"""Lead statuses and activity event types (the contract's words)."""

from enum import StrEnum


class LeadStatus(StrEnum):
    NOT_CONTACTED = "NOT_CONTACTED"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    INTERESTED = "INTERESTED"
    NOT_INTERESTED = "NOT_INTERESTED"
    DO_NOT_CONTACT = "DO_NOT_CONTACT"
    BOUNCED = "BOUNCED"
    UNSUBSCRIBED = "UNSUBSCRIBED"


class EventType(StrEnum):
    LEAD_ADDED = "LEAD_ADDED"
    STATUS_CHANGED = "STATUS_CHANGED"
    EMAIL_SENT = "EMAIL_SENT"
    EMAIL_OPENED = "EMAIL_OPENED"
    LINK_CLICKED = "LINK_CLICKED"
    EMAIL_REPLIED = "EMAIL_REPLIED"
    EMAIL_BOUNCED = "EMAIL_BOUNCED"
    UNSUBSCRIBED = "UNSUBSCRIBED"
    BLOCKED = "BLOCKED"


# Why a lead's sequence waits (campaign_leads.hold), besides a suppression list's entry.
HOLD_MISSING = "missing_variables"  # a template needs a value the lead does not have
HOLD_RENDER = "render_error"  # a template could not be rendered for the lead
# The holds that a change of the lead's profile or of the sequence may lift.
TEMPLATE_HOLDS = (HOLD_MISSING, HOLD_RENDER)
# The recipient's server kept refusing the message for the sender's or the content's sake
# (a 5.7.x policy block, spam, too large): the sequence ended without blocking the address.
HOLD_REJECTED = "rejected"
