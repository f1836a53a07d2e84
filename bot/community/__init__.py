"""Community controls: per-server settings, quotas, banned terms, image moderation; no Discord."""
