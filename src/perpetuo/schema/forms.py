"""A multipart/form-data upload (images/edits, audio transcriptions) as the gateway holds it:
its fields in the client's order, files as views of the one buffer the body was read into."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FormFile:
    filename: str
    content_type: str
    data: memoryview  # a slice of the request body: never copied

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(frozen=True, slots=True)
class Form:
    fields: tuple[tuple[str, str | FormFile], ...]

    def text(self, name: str) -> str | None:
        """The last text value of `name` (as most form readers do), or None."""
        found = None
        for key, value in self.fields:
            if key == name and isinstance(value, str):
                found = value
        return found

    def texts(self) -> dict[str, str | list[str]]:
        """The text fields by name; repeated names (`include[]`) as lists."""
        values: dict[str, str | list[str]] = {}
        for key, value in self.fields:
            if not isinstance(value, str):
                continue
            if key.endswith("[]"):
                listed = values.setdefault(key, [])
                assert isinstance(listed, list)
                listed.append(value)
            else:
                values[key] = value
        return values

    def files(self, *names: str) -> list[FormFile]:
        return [v for k, v in self.fields if k in names and isinstance(v, FormFile)]

    def replaced(self, name: str, value: str) -> Form:
        """The form with every `name` field dropped and `value` set once, where it was."""
        fields: list[tuple[str, str | FormFile]] = []
        placed = False
        for key, current in self.fields:
            if key != name:
                fields.append((key, current))
            elif not placed:
                fields.append((name, value))
                placed = True
        if not placed:
            fields.append((name, value))
        return Form(tuple(fields))

    def without(self, *names: str) -> Form:
        return Form(tuple((k, v) for k, v in self.fields if k not in names))
