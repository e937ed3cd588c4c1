#!/usr/bin/env python3
"""The training load of the profile-guided build (bench/pgo.sh, which `make bench` and the image
build run): drives an instrumented Tollgate (built with `-Cprofile-generate`) with the
benchmark's configuration, so that the profile it writes on exit tells the compiler which code
the request path runs.

The mix is the benchmark's (whole and streamed OpenAI chat completions, at a fixed rate and at
maximum) plus every caller dialect (Anthropic Messages, OpenAI Responses, embeddings) and every
provider type the mock speaks without a cloud credential exchange (Anthropic, Gemini, Bedrock
with SigV4), whole and streamed: code that no training request runs is laid out as cold, so every
path whose speed matters is trained. Fails when any request fails. Set LLVM_PROFILE_FILE to
choose where the profile goes. Standard library only; needs a release mock (--mock) and oha, but
no nginx: the image build runs it too.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from harness import BODY, RELEASE, STREAM_BODY, Stack, oha

# Providers of every type the mock serves, each with a model of its own, on the benchmark's
# Gateway: (name, type, model, input and output USD per million tokens).
TRAINED_PROVIDERS = [
    ("claude", "Anthropic", "claude-bench", "3", "15"),
    ("gemini", "Gemini", "gemini-bench", "0.1", "0.4"),
    ("bedrock", "Bedrock", "bedrock-bench", "3", "15"),
    ("embeddings", "OpenAI", "text-embedding-3-small", "0.02", "0"),
]

# The key pair the mock checks Bedrock's signatures with (crates/tollgate-mock).
AWS_CREDENTIALS = """---
apiVersion: v1
kind: Secret
metadata: {name: aws-credentials, namespace: default}
stringData: {AWS_ACCESS_KEY_ID: AKIDTOLLGATEMOCK, AWS_SECRET_ACCESS_KEY: tollgate-mock-secret-access-key}
"""


def providers(upstream: int) -> str:
    """TRAINED_PROVIDERS as manifests (all on the mock at `upstream`), and the AIRoute to them."""
    docs, rules = [AWS_CREDENTIALS], []
    for name, kind, model, input_price, output_price in TRAINED_PROVIDERS:
        access = ("bedrock: {region: us-east-1, credentialsSecretRef: {name: aws-credentials}}" if kind == "Bedrock"
                  else "auth: {secretRef: {name: upstream, key: apiKey}}")
        docs.append(f"---\napiVersion: tollgate.dev/v1alpha1\nkind: ModelProvider\n"
                    f"metadata: {{name: {name}, namespace: default}}\n"
                    f"spec:\n  type: {kind}\n  endpoint: http://127.0.0.1:{upstream}\n  {access}\n"
                    f"  models: [{{name: {model}, pricing: {{inputPerMillionTokens: \"{input_price}\", "
                    f"outputPerMillionTokens: \"{output_price}\"}}}}]\n")
        rules.append(f"    - matches: [{{model: {model}}}]\n      backends: [{{provider: {name}}}]\n")
    docs.append("---\napiVersion: tollgate.dev/v1alpha1\nkind: AIRoute\n"
                "metadata: {name: providers, namespace: default}\n"
                "spec:\n  parentRefs: [{name: bench}]\n  rules:\n" + "".join(rules))
    return "".join(docs)


def chat(model: str, stream: bool) -> str:
    return json.dumps({"model": model, "stream": stream, "messages": [{"role": "user", "content": "Say hello"}]})


def messages(model: str, stream: bool) -> str:
    return json.dumps({"model": model, "max_tokens": 64, "stream": stream,
                       "messages": [{"role": "user", "content": "Say hello to the benchmark"}]})


RESPONSES_BODY = json.dumps({"model": "gpt-4o-mini", "instructions": "Be brief.", "input": "Say hello"})
EMBEDDINGS_BODY = json.dumps({"model": "text-embedding-3-small", "input": ["the first text", "the second"]})

# (what, body, path, rate; None is as fast as it goes)
MIX = [
    ("openai whole", BODY, "/v1/chat/completions", 1000),
    ("openai whole", BODY, "/v1/chat/completions", None),
    ("openai stream", STREAM_BODY, "/v1/chat/completions", 1000),
    ("openai stream", STREAM_BODY, "/v1/chat/completions", None),
    *[(f"{dialect} {'stream' if stream else 'whole'} -> {model}", body(model, stream), path, 300)
      for dialect, body, path in (("openai", chat, "/v1/chat/completions"), ("anthropic", messages, "/v1/messages"))
      for model in ("gpt-4o-mini", "claude-bench", "gemini-bench", "bedrock-bench")
      for stream in (False, True)
      if (dialect, model) != ("openai", "gpt-4o-mini")],  # the benchmark's own, above
    ("responses whole", RESPONSES_BODY, "/v1/responses", 300),
    ("embeddings", EMBEDDINGS_BODY, "/v1/embeddings", 300),
]


def add_providers(stack: Stack) -> None:
    """Adds the trained providers to the stack's configuration and waits until Tollgate has
    applied them."""
    before = stack.reloads()
    stack.write_manifest(providers(stack.mock_port))
    deadline = time.monotonic() + 15
    while stack.reloads() == before:
        if time.monotonic() > deadline:
            raise RuntimeError("Tollgate did not apply the training providers")
        time.sleep(0.1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tollgate", type=Path, required=True, help="the instrumented Tollgate binary")
    parser.add_argument("--mock", type=Path, default=RELEASE / "tollgate-mock", help="the release mock provider")
    parser.add_argument("--seconds", type=float, default=4, help="duration of each part of the mix at maximum")
    args = parser.parse_args()
    stack = Stack(2, tollgate=args.tollgate, mock=args.mock, reference=False)
    try:
        add_providers(stack)
        for what, body, path, rate in MIX:
            seconds = args.seconds if rate is None or rate >= 1000 else args.seconds / 2
            result = oha(stack.tollgate_port, body, seconds, rate, 50 if rate else 64, path=path)
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
