#!/usr/bin/env python3
"""Fetch the ONNX Runtime shared library that bullpen loads at run time.

The library ships inside the PyPI wheel `onnxruntime==1.31.1`; the same `.so` is in every
Python flavour of the wheel, so one manylinux build is downloaded with pip (which honours the
machine's index and proxy settings), the library is extracted, its SHA-256 checked, and it is
moved into place atomically. Running it again with the library present does nothing.

Usage: fetch-onnxruntime.py DEST_DIR
"""

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile

VERSION = "1.31.1"
LIBRARY = f"libonnxruntime.so.{VERSION}"
MEMBER = f"onnxruntime/capi/{LIBRARY}"
SHA256 = "fc44112fbe06d7d689c57e11d3862031f64711007e4ee020f8eed5185fd2c1d3"


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    dest_dir = sys.argv[1]
    dest = os.path.join(dest_dir, LIBRARY)
    if os.path.exists(dest) and sha256(dest) == SHA256:
        print(f"{dest} is present and verified")
        return
    os.makedirs(dest_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                "--only-binary=:all:", "--platform", "manylinux_2_28_x86_64",
                "--python-version", "3.11", f"onnxruntime=={VERSION}", "--dest", tmp,
            ],
            check=True,
        )
        wheels = [name for name in os.listdir(tmp) if name.endswith(".whl")]
        if len(wheels) != 1:
            sys.exit(f"expected one onnxruntime wheel in {tmp}, found {wheels}")
        staged = os.path.join(dest_dir, f".{LIBRARY}.partial")
        with zipfile.ZipFile(os.path.join(tmp, wheels[0])) as wheel, open(staged, "wb") as out:
            out.write(wheel.read(MEMBER))
    actual = sha256(staged)
    if actual != SHA256:
        os.remove(staged)
        sys.exit(f"{MEMBER} has SHA-256 {actual}, expected {SHA256}; refusing to install it")
    os.replace(staged, dest)
    print(f"installed {dest}")


if __name__ == "__main__":
    main()
