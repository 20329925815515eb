"""Pydantic models: what requests may contain and what responses look like."""
