"""Content guardrails: PII, secrets and prompt-injection detectors with block, redact and log
actions, applied to requests and responses (streams included). See docs/guardrails.md.

Importing this package is cheap: detectors compile their patterns at import, and the one
heavy dependency (`phonenumbers`) loads the first time a phone number must be validated.
"""
