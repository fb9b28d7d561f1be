"""Pydantic models of the wire contract: the network, request and response bodies."""
