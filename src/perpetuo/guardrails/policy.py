"""Guardrail policies: what is set per workspace, key or alias, and what a request gets.

A policy names detectors (or groups: `pii`, `secrets`) with an action each, and/or compliance
presets whose detectors take `preset_action`. Layers merge workspace, then key, then alias:
fields a later layer sets win, detector actions merge name by name (`off` removes one), and
`enabled: false` turns guardrails off for that key or alias. `files` says how attachments
(PDF, DOCX, text files, images) are read for the input detectors, field by field too.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Action = Literal["block", "redact", "log"]
Setting = Literal["block", "redact", "log", "off"]
Direction = Literal["input", "output"]
PresetName = Literal["gdpr", "hipaa", "pci_dss", "dpdp"]
Unscannable = Literal["block", "pass"]

PII = ("email", "phone", "credit_card", "iban", "us_ssn", "in_aadhaar", "in_pan", "ip_address")
SECRETS = ("api_key", "aws_access_key", "private_key", "jwt", "high_entropy")
INJECTION = "prompt_injection"
DETECTOR_NAMES = frozenset((*PII, *SECRETS, INJECTION))
GROUPS: dict[str, tuple[str, ...]] = {"pii": PII, "secrets": SECRETS}

# What each compliance preset checks (docs/guardrails.md explains the choice per regime).
PRESETS: dict[str, tuple[str, ...]] = {
    "gdpr": ("email", "phone", "iban", "credit_card", "ip_address"),
    "hipaa": ("email", "phone", "us_ssn", "ip_address"),
    "pci_dss": ("credit_card",),
    "dpdp": ("in_aadhaar", "in_pan", "phone", "email"),
}


class FilePolicy(BaseModel):
    """How attachments are read for the input detectors (docs/guardrails.md, File guardrails)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scan: bool | None = Field(default=None, description="Read attachments (default true)")
    ocr: bool | None = Field(
        default=None, description="Read text in images and scanned PDF pages (default false)"
    )
    max_bytes: Annotated[int, Field(ge=1, le=512 * 1024 * 1024)] | None = Field(
        default=None, description="Largest file read, decoded (default 10 MiB)"
    )
    max_pages: Annotated[int, Field(ge=1, le=10_000)] | None = Field(
        default=None, description="Most PDF pages read per file (default 100)"
    )
    max_seconds: Annotated[float, Field(gt=0, le=300)] | None = Field(
        default=None, description="Time for reading a request's files, OCR included (default 10)"
    )
    unscannable: Unscannable | None = Field(
        default=None,
        description="A file over a cap or in a format not read: block (default) or pass",
    )


@dataclass(frozen=True, slots=True)
class FileRules:
    """What one request's attachments get: the merged `FilePolicy` with its defaults."""

    ocr: bool = False
    max_bytes: int = 10 * 1024 * 1024
    max_pages: int = 100
    max_seconds: float = 10.0
    unscannable: Unscannable = "block"


class GuardrailPolicy(BaseModel):
    """One layer of policy (workspace settings, a key, an alias, or a test request)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool | None = Field(default=None, description="false: no guardrails here")
    presets: list[PresetName] | None = Field(default=None, description="Compliance bundles")
    preset_action: Action | None = Field(
        default=None, description="Action for detectors that come from presets (default redact)"
    )
    detectors: dict[str, Setting] | None = Field(
        default=None, description="Detector or group (pii, secrets) -> block|redact|log|off"
    )
    apply_to: list[Direction] | None = Field(
        default=None, description="Where detectors run (default: input and output)"
    )
    restore: bool | None = Field(
        default=None, description="Put redacted input values back into the response"
    )
    injection_threshold: Annotated[float, Field(ge=0, le=1)] | None = Field(
        default=None, description="Score at which prompt_injection acts (default 0.5)"
    )
    files: FilePolicy | None = Field(
        default=None, description="How attachments and images are read for input detectors"
    )

    @model_validator(mode="after")
    def _known_detectors(self) -> GuardrailPolicy:
        for name, action in (self.detectors or {}).items():
            if name not in DETECTOR_NAMES and name not in GROUPS:
                known = ", ".join(sorted((*DETECTOR_NAMES, *GROUPS)))
                raise ValueError(f"unknown detector {name!r} (known: {known})")
            if name == INJECTION and action == "redact":
                raise ValueError("prompt_injection can block or log, not redact")
        return self


@dataclass(frozen=True, slots=True)
class ResolvedPolicy:
    """What one request runs: detector -> action for each direction."""

    input: dict[str, Action]
    output: dict[str, Action]
    restore: bool
    injection_threshold: float
    fingerprint: str  # changes whenever anything that shapes an answer changes
    files: FileRules | None = None  # None: attachments are not read (no input detectors)

    @property
    def active(self) -> bool:
        return bool(self.input or self.output)


def resolve(*layers: GuardrailPolicy | None) -> ResolvedPolicy | None:
    """Merge the layers (earliest first); None when nothing is enabled."""
    present = [layer for layer in layers if layer is not None]
    if not present:
        return None
    enabled = True
    presets: list[str] = []
    preset_action: Action = "redact"
    explicit: dict[str, Setting] = {}
    apply_to: list[Direction] = ["input", "output"]
    restore = False
    threshold = 0.5
    files: dict[str, object] = {}
    for layer in present:
        if layer.enabled is not None:
            enabled = layer.enabled
        if layer.presets is not None:
            presets = list(layer.presets)
        if layer.preset_action is not None:
            preset_action = layer.preset_action
        for name, setting in (layer.detectors or {}).items():
            for detector in GROUPS.get(name, (name,)):
                explicit[detector] = setting
        if layer.apply_to is not None:
            apply_to = list(layer.apply_to)
        if layer.restore is not None:
            restore = layer.restore
        if layer.injection_threshold is not None:
            threshold = layer.injection_threshold
        if layer.files is not None:
            files.update(layer.files.model_dump(exclude_none=True))
    if not enabled:
        return None
    actions: dict[str, Action] = {}
    for preset in presets:
        for detector in PRESETS[preset]:
            actions[detector] = preset_action
    for detector, setting in explicit.items():
        if setting == "off":
            actions.pop(detector, None)
        else:
            actions[detector] = setting
    if not actions:
        return None
    inputs = dict(actions) if "input" in apply_to else {}
    outputs = {k: v for k, v in actions.items() if k != INJECTION} if "output" in apply_to else {}
    rules = None
    if inputs and files.pop("scan", True):
        rules = FileRules(**files)  # type: ignore[arg-type]
    shaping: list[object] = [inputs, outputs, restore, threshold]
    if files:  # fingerprints of policies without file settings stay as they were
        shaping.append(files)
    shape = json.dumps(shaping, sort_keys=True)
    fingerprint = hashlib.sha256(shape.encode()).hexdigest()[:16]
    return ResolvedPolicy(inputs, outputs, restore, threshold, fingerprint, rules)
