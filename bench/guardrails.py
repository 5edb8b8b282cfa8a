"""Guardrail figures: `python -m bench.guardrails` (add `--accuracy` for the detector table).

- accuracy: precision and recall of each PII and secret detector on the labelled corpus of
  tests/guardrails/corpus.py
- scanning cost in-process, per KB of prompt, for the full policy (every PII and secret
  detector plus the injection scorer), and the streaming filter over 3-character deltas
- end to end: latency through a gateway with guardrails on (alias policy: every detector,
  redact, input and output) against the same gateway with them off, per prompt size, with
  the mock upstream called directly as the baseline
- file guardrails (bench/guardrail_files.py; `--files` for these alone): accuracy through
  each file format, cost per page, and a PDF attachment end to end
"""

from __future__ import annotations

import argparse
import json
import time

from bench import guardrail_files
from bench.gateway_run import Stack, run, timed
from perpetuo.guardrails.engine import Report, Vault, scan, transform
from perpetuo.guardrails.injection import HEURISTIC
from perpetuo.guardrails.policy import PII, SECRETS
from perpetuo.guardrails.stream import StreamFilter

ACTIONS = dict.fromkeys((*PII, *SECRETS), "redact")
PROSE = (
    "The quarterly review covered onboarding, the migration of the billing service and the "
    "open questions from the last planning meeting. Several teams asked for clearer owners. "
    "Contact jane.doe@example.com or +44 20 7946 0958 about the invoice paid with card "
    "4111 1111 1111 1111; the server 10.20.30.40 runs version 2.4.1 of the agent. "
)


def prompt(kilobytes: int) -> str:
    text = PROSE * (kilobytes * 1024 // len(PROSE) + 1)
    return text[: kilobytes * 1024]


def per_kb(func, text: str, repeat: int) -> float:
    started = time.perf_counter()
    for _ in range(repeat):
        func(text)
    return (time.perf_counter() - started) / repeat / (len(text) / 1024) * 1e6


def scanning() -> list[dict[str, float]]:
    rows = []
    for size in (1, 4, 16, 64):
        text = prompt(size)
        repeat = max(5, 400 // size)

        def full(t: str) -> None:
            transform(t, scan(t, ACTIONS), Vault(), False)

        def streamed(t: str) -> None:
            stream = StreamFilter(ACTIONS, Vault(), Report())
            for i in range(0, len(t), 3):
                stream.push(0, t[i : i + 3])
            stream.flush(0)

        rows.append(
            {
                "kb": size,
                "scan_us_per_kb": per_kb(full, text, repeat),
                "injection_us_per_kb": per_kb(HEURISTIC.score_now, text, repeat),
                "stream_filter_us_per_kb": per_kb(streamed, text, max(2, repeat // 10)),
            }
        )
    return rows


def end_to_end(rounds: int) -> list[dict[str, float]]:
    policy = {"detectors": {"pii": "redact", "secrets": "redact", "prompt_injection": "log"}}
    models = {
        "plain": {"deployments": [{"provider": "mock", "model": "gpt-4o-mini"}]},
        "guarded": {
            "deployments": [{"provider": "mock", "model": "gpt-4o-mini"}],
            "guardrails": policy,
        },
    }
    stack = Stack(models)
    rows = []
    try:
        for size in (1, 4, 16):
            text = prompt(size)

            def body(model: str, text: str = text) -> bytes:
                message = {"role": "user", "content": text}
                return json.dumps({"model": model, "messages": [message]}).encode()

            gateway = run(timed(stack.url, {"off": body("plain"), "on": body("guarded")}, rounds))
            direct = run(timed(stack.mock_url, {"direct": body("gpt-4o-mini")}, rounds))
            off, on = gateway["off"]["p50_ms"], gateway["on"]["p50_ms"]
            rows.append(
                {
                    "kb": size,
                    "direct_p50_ms": direct["direct"]["p50_ms"],
                    "off_p50_ms": off,
                    "on_p50_ms": on,
                    "ratio_on_off": on / off,
                    "added_ms_per_kb": (on - off) / size,
                }
            )
    finally:
        stack.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accuracy", action="store_true", help="only the detector table")
    parser.add_argument("--files", action="store_true", help="only the file guardrail figures")
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    from tests.guardrails.corpus import table

    if args.files:
        guardrail_files.report(PROSE, max(10, args.rounds // 10))
        return

    print("Detector accuracy on the labelled corpus:\n")
    print(table())
    if args.accuracy:
        return
    print("\nIn-process scanning (every PII and secret detector, redact):\n")
    print("| prompt KB | scan + redact µs/KB | injection scorer µs/KB | stream filter µs/KB |")
    print("|---:|---:|---:|---:|")
    for row in scanning():
        print(
            f"| {row['kb']} | {row['scan_us_per_kb']:.0f} | {row['injection_us_per_kb']:.0f} "
            f"| {row['stream_filter_us_per_kb']:.0f} |"
        )
    print(f"\nEnd to end, sequential requests, median of {args.rounds} each:\n")
    print(
        "| prompt KB | direct p50 ms | guardrails off p50 ms | on p50 ms | on/off "
        "| added ms per KB |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for row in end_to_end(args.rounds):
        print(
            f"| {row['kb']} | {row['direct_p50_ms']:.3f} | {row['off_p50_ms']:.3f} "
            f"| {row['on_p50_ms']:.3f} | {row['ratio_on_off']:.2f} | {row['added_ms_per_kb']:.3f} |"
        )
    guardrail_files.report(PROSE, max(10, args.rounds // 10))


if __name__ == "__main__":
    main()
