#!/usr/bin/env bash
# Fetches the GPT-2 tokenizer test vectors (ggml-vocab-gpt-2.gguf and its .inp/.out reference files)
# from the llama-cpp-python sdist into third_party/llama.cpp/models/. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=third_party/llama.cpp/models
PYTHON=${PYTHON:-python3}
NAMES="ggml-vocab-gpt-2.gguf ggml-vocab-gpt-2.gguf.inp ggml-vocab-gpt-2.gguf.out"

present() { for n in $NAMES; do [ -s "$DEST/$n" ] || return 1; done; }
if present; then echo "fetch-testdata: $DEST present"; exit 0; fi

mkdir -p "$DEST"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
# --no-binary for this package only: ":all:" would also build its build tools (cmake) from source.
"$PYTHON" -m pip download --quiet --no-deps --no-binary llama-cpp-python --dest "$TMP" llama-cpp-python==0.3.36
SDIST=$(ls "$TMP"/llama_cpp_python-*.tar.gz)
# Extract only the three vocab files (the sdist is large; wildcards keep its top folder name out of it).
tar -xzf "$SDIST" -C "$TMP" --wildcards '*/vendor/llama.cpp/models/ggml-vocab-gpt-2.gguf*'
for n in $NAMES; do cp "$(ls "$TMP"/*/vendor/llama.cpp/models/"$n")" "$DEST/$n"; done
present || { echo "fetch-testdata: $DEST is incomplete after extraction" >&2; exit 1; }
echo "fetch-testdata: $DEST fetched"
