"""Call records: what happened to every call, stored durably (issue #6)."""
