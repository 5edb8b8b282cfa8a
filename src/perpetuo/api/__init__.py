"""The HTTP layer: ingress decoding, routes, error rendering. No business logic here."""
