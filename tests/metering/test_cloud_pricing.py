"""Bedrock and Vertex AI model ids in the pricing catalog: inference profiles, vendor and
version parts, ARNs and Vertex's @-dated names find the model's price and output limit."""

from __future__ import annotations

import pytest

from perpetuo.metering.pricing import Price, default_catalog, normalize_model


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("anthropic.claude-3-5-sonnet-20241022-v2:0", "claude-3-5-sonnet"),
        ("us.anthropic.claude-sonnet-4-20250514-v1:0", "claude-sonnet-4"),
        ("global.anthropic.claude-haiku-4-5-20251001-v1:0", "claude-haiku-4-5"),
        (
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/"
            "eu.anthropic.claude-3-haiku-20240307-v1:0",
            "claude-3-haiku",
        ),
        ("anthropic.claude-3-sonnet-20240229-v1:0:200k", "claude-3-sonnet"),
        ("apac.amazon.nova-pro-v1:0", "nova-pro"),
        ("meta.llama3-1-70b-instruct-v1:0", "llama3-1-70b-instruct"),
        ("mistral.mistral-large-2407-v1:0", "mistral-large-2407"),
        ("claude-3-5-sonnet-v2@20241022", "claude-3-5-sonnet-v2"),
        ("claude-opus-4-1@20250805", "claude-opus-4-1"),
        ("deepseek-v3", "deepseek-v3"),  # not a Bedrock id: its version stays
    ],
)
def test_cloud_ids_normalize_to_the_model(name: str, expected: str):
    assert normalize_model(name) == expected


def test_cloud_ids_have_prices_and_output_limits():
    catalog = default_catalog()
    claude = catalog.lookup("claude-sonnet-4-20250514")
    assert catalog.lookup("us.anthropic.claude-sonnet-4-20250514-v1:0") == claude
    assert catalog.lookup("claude-sonnet-4@20250514") == claude
    assert catalog.max_output_for("us.anthropic.claude-sonnet-4-20250514-v1:0") == 64000
    assert catalog.lookup("us.amazon.nova-lite-v1:0") == Price.of("0.06", "0.24", "0.015")
    assert catalog.max_output_for("amazon.nova-pro-v1:0") == 10000
    # Exact ids win where the family shares a name but not a price.
    assert catalog.lookup("amazon.titan-embed-text-v2:0") == Price.of("0.02", 0)
    assert catalog.lookup("amazon.titan-embed-text-v1") == Price.of("0.1", 0)
    assert catalog.lookup("gemini-2.5-flash") is not None  # Gemini on Vertex: the same name
