"""The HTTP layer: routers, error mapping, dependencies and the named examples."""
