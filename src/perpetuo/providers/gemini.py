"""(being written)"""

from perpetuo.providers.base import ProviderAdapter


class GeminiAdapter(ProviderAdapter):
    type = "gemini"
