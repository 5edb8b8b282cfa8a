"""The config file's `api_keys:` section: the environments keys are created in.

`live` and `test` always exist; the operator adds more (`staging`, `dev`). An environment
is part of the key's prefix (`pk_staging_...`), so its name is short and lower-case. Keys of
a `test_only` environment may call only test aliases (routing/table.py says which are).
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

BUILT_IN = ("live", "test")
# Fits the key's `environment` column (8 characters) and reads well in a prefix.
_NAME = re.compile(r"^[a-z][a-z0-9]{1,7}$")


class ApiKeysConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    environments: list[str] = Field(
        default_factory=list,
        description="Environments besides live and test (2 to 8 lower-case letters or "
        "digits, such as staging or dev); each gives keys the prefix pk_<name>_",
    )
    test_only: list[str] = Field(
        default_factory=list,
        description="Environments whose keys may call only test aliases (an alias marked "
        "test: true, or whose deployments all use providers marked test: true or of type "
        "demo); others are refused with 403 test_key_not_allowed",
    )

    @field_validator("environments")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        for name in value:
            if name == "master":  # pk_master_ is the master key's prefix
                raise ValueError("'master' is the master key's prefix, not an environment")
            if not _NAME.match(name):
                raise ValueError(
                    f"{name!r}: an environment is 2 to 8 lower-case letters or digits, "
                    "starting with a letter"
                )
        return [n for n in dict.fromkeys(value) if n not in BUILT_IN]

    @model_validator(mode="after")
    def _known(self) -> ApiKeysConfig:
        unknown = [n for n in self.test_only if n not in self.all_environments]
        if unknown:
            raise ValueError(
                f"test_only: unknown environment {unknown[0]!r} "
                f"(environments: {', '.join(self.all_environments)})"
            )
        return self

    @property
    def all_environments(self) -> tuple[str, ...]:
        return (*BUILT_IN, *self.environments)
