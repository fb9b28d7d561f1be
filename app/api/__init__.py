"""The HTTP layer: reading and limiting bodies, admission, dispatch, error mapping, the OpenAPI spec and one router per resource (routes/)."""
