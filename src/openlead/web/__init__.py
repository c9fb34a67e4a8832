"""HTTP plumbing shared by every domain: errors, auth, rate limits, pagination."""
