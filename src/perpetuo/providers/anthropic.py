"""(being written)"""

from perpetuo.providers.base import ProviderAdapter


class AnthropicAdapter(ProviderAdapter):
    type = "anthropic"
