"""The Anthropic Messages API (`POST /v1/messages`) as an ingress dialect: pure codecs between
its wire format and the internal chat form (request, response, stream, errors, tokens)."""
