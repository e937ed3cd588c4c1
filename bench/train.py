#!/usr/bin/env python3
"""The training load of `make bench-pgo`: drives an instrumented Tollgate (built with
`-Cprofile-generate`) with the benchmark's configuration, so that the profile it writes on exit
tells the compiler which code the request path runs.

The mix is the benchmark's (whole and streamed OpenAI chat completions, at a fixed rate and at
maximum) plus the same calls in Anthropic's dialect, translated to the OpenAI provider: code that
no training request runs is laid out as cold, so every path the benchmark measures is trained.
Fails when any request fails. Set LLVM_PROFILE_FILE to choose where the profile goes. Standard
library only; needs the release mock, nginx and oha, as bench/harness.py does.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from harness import BODY, STREAM_BODY, Stack, oha

ANTHROPIC_BODY = json.dumps({"model": "gpt-4o-mini", "max_tokens": 64,
                             "messages": [{"role": "user", "content": "Say hello to the benchmark"}]})
ANTHROPIC_STREAM_BODY = json.dumps({"model": "gpt-4o-mini", "max_tokens": 64, "stream": True,
                                    "messages": [{"role": "user", "content": "Say hello"}]})

# (what, body, path, rate; None is as fast as it goes)
MIX = [
    ("openai whole", BODY, "/v1/chat/completions", 1000),
    ("openai whole", BODY, "/v1/chat/completions", None),
    ("openai stream", STREAM_BODY, "/v1/chat/completions", 1000),
    ("openai stream", STREAM_BODY, "/v1/chat/completions", None),
    ("anthropic whole", ANTHROPIC_BODY, "/v1/messages", 500),
    ("anthropic stream", ANTHROPIC_STREAM_BODY, "/v1/messages", 500),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tollgate", type=Path, required=True, help="the instrumented Tollgate binary")
    parser.add_argument("--seconds", type=float, default=4, help="duration of each part of the mix")
    args = parser.parse_args()
    stack = Stack(2, tollgate=args.tollgate)
    try:
        for what, body, path, rate in MIX:
            result = oha(stack.tollgate_port, body, args.seconds, rate, 50 if rate else 64, path=path)
            print(f"trained {what} @{rate or 'max'}: "
                  f"{result['requests']} requests, {result['errors']} errors", flush=True)
            if result["errors"] or not result["requests"]:
                sys.exit(f"training requests failed: {result['error_kinds']}")
    finally:
        # Tollgate writes its profile as it exits, after the drain that SIGTERM starts.
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
