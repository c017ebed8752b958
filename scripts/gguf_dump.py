#!/usr/bin/env python3
"""Reads a GGUF file with the `gguf` package (llama.cpp's own Python reader), independently of
Streamline, and dumps what it found for a test to compare with the model store:
  OUT/metadata.json  every key -> value (arrays as lists)
  OUT/tensors.json   [{name, type, shape}] in file order (shape row-major, as numpy reads it)
  OUT/<name>.f32     each tensor dequantised to little-endian float32
Usage: gguf_dump.py FILE.gguf OUT_DIR   (make pyenv installs the package into .build/pyenv)"""
import json
import os
import sys

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize


def main(path, out):
    os.makedirs(out, exist_ok=True)
    reader = GGUFReader(path)
    metadata = {}
    for name, field in reader.fields.items():
        if name.startswith("GGUF."):  # the reader's own header pseudo-fields
            continue
        value = field.contents()
        metadata[name] = value.tolist() if hasattr(value, "tolist") else value
    with open(os.path.join(out, "metadata.json"), "w") as f:
        json.dump(metadata, f)
    tensors = []
    for t in reader.tensors:
        values = dequantize(t.data, t.tensor_type).astype("<f4")
        # ne is innermost first; numpy's row-major shape is its reverse.
        shape = [int(n) for n in reversed(t.shape.tolist())]
        values.reshape(-1).tofile(os.path.join(out, t.name + ".f32"))
        tensors.append({"name": t.name, "type": t.tensor_type.name, "shape": shape})
    with open(os.path.join(out, "tensors.json"), "w") as f:
        json.dump(tensors, f)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
