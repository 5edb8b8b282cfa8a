"""Ingress dialects: the wire formats clients speak (Chat Completions, Responses, Messages).

Each dialect package holds pure codecs between its format and the internal chat form:
request.py (decode), response.py (encode), stream.py (StreamEncoder), errors.py.
"""
