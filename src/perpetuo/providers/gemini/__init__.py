"""Google Gemini through the Google AI Gemini API (generativelanguage.googleapis.com).

`request` builds generateContent bodies from OpenAI chat requests, `response` reads answers
and SSE streams back into OpenAI objects, `errors` classifies Google's error shape, and
`adapter` wires them to URLs, headers and the embeddings endpoint.
"""

from perpetuo.providers.gemini.adapter import GeminiAdapter

__all__ = ["GeminiAdapter"]
