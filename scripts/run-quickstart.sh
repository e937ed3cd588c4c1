#!/usr/bin/env bash
# `make run`: the mock provider on 127.0.0.1:9100 and `tollgate run` on the quickstart.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/debug

"$bin/tollgate-mock" --listen 127.0.0.1:9100 --chunk-interval-ms 100 &
mock=$!
trap 'kill $mock 2>/dev/null || true' EXIT

cat <<'HELP'

Tollgate is starting on http://127.0.0.1:8080 (admin: http://127.0.0.1:9901/config).
The upstream is a local mock provider on 127.0.0.1:9100. Try, from another terminal:

  curl http://127.0.0.1:8080/v1/chat/completions \
    -H 'Authorization: Bearer tg-alice-secret' -H 'Content-Type: application/json' \
    -d '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello"}]}'

  python3 - <<'PY'
  from openai import OpenAI
  client = OpenAI(base_url="http://127.0.0.1:8080/v1", api_key="tg-alice-secret")
  for chunk in client.chat.completions.create(model="gpt-4o-mini", stream=True,
          messages=[{"role": "user", "content": "Hello"}]):
      print(chunk.choices[0].delta.content or "", end="", flush=True)
  print()
  PY

Edit examples/quickstart/*.yaml while it runs: changes are applied without dropping requests.
Press Ctrl-C to stop.

HELP

"$bin/tollgate" run -f examples/quickstart/
