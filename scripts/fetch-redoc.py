#!/usr/bin/env python3
"""Fetch Redoc, the API reference renderer that bullpen embeds and serves at /docs.

The npm package `redoc@2.5.4` is downloaded from the npm registry (`npm_config_registry` when
set, as npm itself honours it), its SHA-512 checked against the pin below, and its standalone
bundle and licences written into DEST_DIR atomically. Running it again with the files present
and verified does nothing. No Node.js is needed.

Usage: fetch-redoc.py DEST_DIR
"""

import base64
import hashlib
import io
import os
import sys
import tarfile
import tempfile
import urllib.request

VERSION = "2.5.4"
# `dist.integrity` of redoc@2.5.4 in the npm registry.
INTEGRITY = "sha512-M6jWhG1qoBnH6TFmzJnstyCZ87HmOY/UzDm78mHiYihEdlV/YcS9ogOo1NlElnJMeLsyxHFe2yFc4sNjHTrABQ=="
MEMBERS = {
    "package/bundles/redoc.standalone.js": "redoc.standalone.js",
    "package/LICENSE": "redoc.LICENSE",
    # The licences of what the bundle includes.
    "package/bundles/redoc.standalone.js.LICENSE.txt": "redoc.standalone.js.LICENSE.txt",
}
STAMP = "redoc.version"


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    dest_dir = sys.argv[1]
    stamp = os.path.join(dest_dir, STAMP)
    present = all(os.path.exists(os.path.join(dest_dir, name)) for name in MEMBERS.values())
    if present and os.path.exists(stamp) and open(stamp).read().strip() == INTEGRITY:
        return
    registry = os.environ.get("npm_config_registry", "https://registry.npmjs.org/").rstrip("/")
    url = f"{registry}/redoc/-/redoc-{VERSION}.tgz"
    with urllib.request.urlopen(url, timeout=60) as response:
        tarball = response.read()
    digest = "sha512-" + base64.b64encode(hashlib.sha512(tarball).digest()).decode()
    if digest != INTEGRITY:
        sys.exit(f"{url}: integrity {digest} is not the pinned {INTEGRITY}")
    os.makedirs(dest_dir, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
        for member, name in MEMBERS.items():
            data = archive.extractfile(member).read()
            with tempfile.NamedTemporaryFile(dir=dest_dir, delete=False) as out:
                out.write(data)
            os.replace(out.name, os.path.join(dest_dir, name))
    with open(stamp, "w") as out:
        out.write(INTEGRITY + "\n")
    print(f"redoc {VERSION} in {dest_dir}")


if __name__ == "__main__":
    main()
