"""Gatehouse benchmark harness (stdlib only; matplotlib optional for charts)."""
