"""OpenAI's Images and Audio APIs for the OpenAI mock (and Azure's deployment routes), per
the public reference: images/generations (JSON) and images/edits (multipart) for dall-e-2,
dall-e-3 and gpt-image-1 (token usage), audio/transcriptions and translations (multipart;
json, text, srt, verbose_json, vtt; whisper's duration usage, gpt-4o-transcribe's tokens),
audio/speech (binary audio streamed in chunks), and the documented error objects.

Triggers: a prompt with "trigger content policy" -> 400 content_policy_violation.
`report_audio_usage = False` answers transcriptions without usage (as whisper did before).
"""

from __future__ import annotations

import asyncio
import base64
import struct
import time
from typing import Any

from aiohttp import web

# The smallest valid PNG (1x1, transparent): what every generated image is.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
PNG_B64 = base64.b64encode(PNG).decode()
SIZES = {
    "dall-e-2": ("256x256", "512x512", "1024x1024"),
    "dall-e-3": ("1024x1024", "1792x1024", "1024x1792"),
    "gpt-image-1": ("auto", "1024x1024", "1536x1024", "1024x1536"),
}
IMAGE_TOKENS = {"low": 272, "medium": 1056, "high": 4160, "auto": 1056}
AUDIO_TYPES = {
    "mp3": "audio/mpeg",
    "opus": "audio/opus",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}
VOICES = ("alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer")
SPEECH_CHUNKS = 4


def error(status: int, message: str, param: str | None = None, code: str | None = None):
    return web.json_response(
        {
            "error": {
                "message": message,
                "type": "invalid_request_error",
                "param": param,
                "code": code,
            }
        },
        status=status,
    )


def missing(name: str) -> web.Response:
    return error(400, f"Missing required parameter: '{name}'.", name, "missing_required_parameter")


def audio_seconds(data: bytes) -> float:
    """A WAV file's length from its header; others at 16,000 bytes a second."""
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        byte_rate = struct.unpack("<I", data[28:32])[0]
        size = struct.unpack("<I", data[40:44])[0]
        return size / byte_rate
    return len(data) / 16_000


def transcript_of(data: bytes) -> str:
    return f"A transcript of {len(data)} bytes of audio."


def stamp(seconds: float, comma: bool) -> str:
    millis = round(seconds * 1000)
    text = f"{millis // 3_600_000:02d}:{millis // 60_000 % 60:02d}:{millis // 1000 % 60:02d}"
    return text + ("," if comma else ".") + f"{millis % 1000:03d}"


class MediaAPI:
    """Mixed into OpenAIMock (which provides record, faults and the key checks)."""

    report_audio_usage = True

    def media_routes(self, app: web.Application) -> None:
        for prefix, azure in (("/v1", False), ("/openai/deployments/{deployment}", True)):
            for path, handler in (
                ("images/generations", self.images_generations),
                ("images/edits", self.images_edits),
                ("audio/transcriptions", self.transcriptions),
                ("audio/translations", self.translations),
                ("audio/speech", self.speech),
            ):
                app.router.add_post(f"{prefix}/{path}", self._entry(handler, azure))

    def _entry(self, handler: Any, azure: bool) -> Any:
        async def serve(request: web.Request) -> web.StreamResponse:
            recorded = await self.record(request)  # type: ignore[attr-defined]
            denied = self._check_azure(request) if azure else self._check_bearer(request)  # type: ignore[attr-defined]
            if denied is not None:
                return denied
            edits = azure and request.path.endswith("/images/edits")
            if edits and request.query.get("api-version", "") < "2025-04-01-preview":
                return web.json_response(
                    {"error": {"code": "404", "message": "Resource not found"}}, status=404
                )
            fault = self.take_fault()  # type: ignore[attr-defined]
            if (answer := await self.apply_fault(request, fault)) is not None:  # type: ignore[attr-defined]
                return answer
            fields = recorded.body if isinstance(recorded.body, dict) else await _form(recorded)
            if azure:
                fields.setdefault("model", request.match_info["deployment"])
            return await handler(request, fields, fault)

        return serve

    # -- images ----------------------------------------------------------------------------

    async def images_generations(self, request: web.Request, body: dict[str, Any], fault: Any):
        return self._images(body, edits=0)

    async def images_edits(self, request: web.Request, fields: dict[str, Any], fault: Any):
        images = fields.get("image[]") or fields.get("image")
        if not images:
            return missing("image")
        images = images if isinstance(images, list) else [images]
        if fields.get("model", "dall-e-2") == "dall-e-3":
            return error(400, "Image editing is not supported for model dall-e-3.", "model")
        for image in images:
            if not isinstance(image, tuple) or not image[2].startswith(b"\x89PNG"):
                return error(
                    400,
                    "Invalid image file or mode for image 1, please check your image file.",
                    "image",
                    "invalid_image_format",
                )
        return self._images(fields, edits=len(images))

    def _images(self, body: dict[str, Any], edits: int) -> web.Response:
        model = body.get("model") or "dall-e-2"
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt:
            return missing("prompt")
        if "trigger content policy" in prompt:
            return error(
                400,
                "Your request was rejected as a result of our safety system. Your prompt may "
                "contain text that is not allowed by our safety system.",
                None,
                "content_policy_violation",
            )
        n = int(body.get("n") or 1)
        if model == "dall-e-3" and n != 1:
            return error(400, "You must provide n=1 for this model.", "n", "invalid_value")
        size = body.get("size") or ("auto" if model == "gpt-image-1" else "1024x1024")
        if model in SIZES and size not in SIZES[model]:
            allowed = ", ".join(f"'{s}'" for s in SIZES[model])
            return error(
                400,
                f"Invalid value: '{size}'. Supported values are: {allowed}.",
                "size",
                "invalid_value",
            )
        gpt_image = model.startswith("gpt-image")
        if gpt_image and body.get("response_format"):
            return error(
                400, "Unknown parameter: 'response_format'.", "response_format", "unknown_parameter"
            )
        as_url = not gpt_image and body.get("response_format", "url") == "url"
        item: dict[str, Any] = (
            {"url": f"https://images.example/{model}/{int(time.time())}.png"}
            if as_url
            else {"b64_json": PNG_B64}
        )
        if model == "dall-e-3":
            item["revised_prompt"] = f"A detailed rendering of {prompt}"
        answer: dict[str, Any] = {"created": int(time.time()), "data": [dict(item)] * n}
        if gpt_image:
            quality = body.get("quality") or "auto"
            words = len(prompt.split())
            answer.update(
                background="opaque",
                output_format=body.get("output_format") or "png",
                quality=quality if quality != "auto" else "medium",
                size=size if size != "auto" else "1024x1024",
                usage={
                    "input_tokens": words + 323 * edits,
                    "output_tokens": IMAGE_TOKENS.get(quality, 1056) * n,
                    "total_tokens": words + 323 * edits + IMAGE_TOKENS.get(quality, 1056) * n,
                    "input_tokens_details": {"text_tokens": words, "image_tokens": 323 * edits},
                },
            )
        return web.json_response(answer)

    # -- audio -----------------------------------------------------------------------------

    async def transcriptions(self, request: web.Request, fields: dict[str, Any], fault: Any):
        return self._transcribe(fields, task="transcribe")

    async def translations(self, request: web.Request, fields: dict[str, Any], fault: Any):
        model = str(fields.get("model") or "")
        if model.startswith("gpt-4o"):  # translations are whisper's only
            return error(
                400, f"Model {model} is not supported for translations.", "model", "invalid_value"
            )
        return self._transcribe(fields, task="translate")

    def _transcribe(self, fields: dict[str, Any], task: str) -> web.StreamResponse:
        upload = fields.get("file")
        if not isinstance(upload, tuple):
            return missing("file")
        model = fields.get("model")
        if not model:
            return missing("model")
        filename, _, data = upload
        if not data:
            return error(400, "The audio file is empty.", "file")
        if filename.rsplit(".", 1)[-1] not in (
            "flac",
            "m4a",
            "mp3",
            "mp4",
            "mpeg",
            "mpga",
            "oga",
            "ogg",
            "wav",
            "webm",
        ):
            return error(
                400,
                "Invalid file format. Supported formats: ['flac', 'm4a', 'mp3', "
                "'mp4', 'mpeg', 'mpga', 'oga', 'ogg', 'wav', 'webm']",
                "file",
                "invalid_value",
            )
        fmt = fields.get("response_format") or "json"
        tokens_model = model.startswith("gpt-4o")
        if tokens_model and fmt not in ("json", "text"):
            return error(
                400,
                f"response_format '{fmt}' is not compatible with model "
                f"'{model}'. Use 'json' or 'text'.",
                "response_format",
                "unsupported_value",
            )
        seconds = audio_seconds(data)
        text = transcript_of(data)
        if fmt == "text":
            return web.Response(text=text + "\n", content_type="text/plain")
        if fmt == "srt":
            cue = f"1\n{stamp(0, True)} --> {stamp(seconds, True)}\n{text}\n\n"
            return web.Response(text=cue, content_type="text/plain")
        if fmt == "vtt":
            cue = f"WEBVTT\n\n{stamp(0, False)} --> {stamp(seconds, False)}\n{text}\n\n"
            return web.Response(text=cue, content_type="text/plain")
        answer: dict[str, Any] = {"text": text}
        if fmt == "verbose_json":
            answer = {
                "task": task,
                "language": "english",
                "duration": round(seconds, 2),
                "text": text,
                "segments": [{"id": 0, "start": 0.0, "end": round(seconds, 2), "text": text}],
            }
        if task == "transcribe" and self.report_audio_usage:
            if tokens_model:
                audio = max(1, round(seconds * 10))
                output = len(text.split())
                answer["usage"] = {
                    "type": "tokens",
                    "input_tokens": audio,
                    "input_token_details": {"text_tokens": 0, "audio_tokens": audio},
                    "output_tokens": output,
                    "total_tokens": audio + output,
                }
            else:
                answer["usage"] = {"type": "duration", "seconds": round(seconds)}
        return web.json_response(answer)

    async def speech(self, request: web.Request, body: dict[str, Any], fault: Any):
        text = body.get("input")
        if not isinstance(text, str) or not text:
            return missing("input")
        if len(text) > 4096:
            return error(
                400,
                "Invalid 'input': string too long. Expected a string with maximum "
                f"length 4096, but got a string with length {len(text)} instead.",
                "input",
                "string_above_max_length",
            )
        voice = body.get("voice")
        if voice is None:
            return missing("voice")
        if voice not in VOICES:
            return error(
                400,
                f"Invalid value: '{voice}'. Supported values are: {', '.join(VOICES)}.",
                "voice",
                "invalid_value",
            )
        fmt = body.get("response_format") or "mp3"
        if fmt not in AUDIO_TYPES:
            return error(400, f"Invalid value: '{fmt}'.", "response_format", "invalid_value")
        audio = speech_bytes(text)
        response = web.StreamResponse(headers={"content-type": AUDIO_TYPES[fmt]})
        response.enable_chunked_encoding()
        await response.prepare(request)
        self.answers.append(b"")  # type: ignore[attr-defined]
        slot = len(self.answers) - 1  # type: ignore[attr-defined]
        size = -(-len(audio) // SPEECH_CHUNKS)
        for index in range(SPEECH_CHUNKS):
            if fault and fault.cut_after is not None and index >= fault.cut_after:
                if request.transport is not None:
                    request.transport.abort()
                return response
            piece = audio[index * size : (index + 1) * size]
            self.answers[slot] += piece  # type: ignore[attr-defined]
            await response.write(piece)
            await asyncio.sleep(fault.event_delay if fault and fault.event_delay else 0.01)
        await response.write_eof()
        return response


def speech_bytes(text: str) -> bytes:
    """Deterministic 'audio' for a text: an ID3 header, then 64 bytes per character."""
    body = bytes((ord(c) + i) % 256 for i, c in enumerate(text * 64))
    return b"ID3\x04\x00\x00\x00\x00\x00\x00" + body


async def _form(recorded: Any) -> dict[str, Any]:
    """A multipart body as {name: text, or (filename, content type, bytes)}; repeated
    names (image[]) as lists."""
    fields: dict[str, Any] = {}
    content_type = recorded.headers.get("Content-Type", "")
    if "multipart/form-data" not in content_type:
        return fields
    reader = _MultipartReader(recorded.raw, content_type)
    for name, value in reader.parts():
        if name.endswith("[]"):
            fields.setdefault(name, []).append(value)
        else:
            fields[name] = value
    return fields


class _MultipartReader:
    """Parses a recorded multipart body with the standard library's email parser, which
    knows nothing of the gateway's own parser."""

    def __init__(self, raw: bytes, content_type: str) -> None:
        self.raw, self.content_type = raw, content_type

    def parts(self) -> list[tuple[str, Any]]:
        from email.parser import BytesParser
        from email.policy import HTTP

        message = BytesParser(policy=HTTP).parsebytes(
            f"Content-Type: {self.content_type}\r\n\r\n".encode() + self.raw
        )
        parts: list[tuple[str, Any]] = []
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            filename = part.get_param("filename", header="content-disposition")
            data = part.get_payload(decode=True) or b""
            if filename is not None:
                parts.append((name, (filename, part.get_content_type(), data)))
            else:
                parts.append((name, data.decode()))
        return parts
