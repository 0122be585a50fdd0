"""Debian packages the scripts and drills install on first use (apt-get, through sudo when
not root): `ensure({"patroni": "patroni", "etcd": "etcd-server"})` installs the packages whose
command is missing."""

import os
import shutil
import subprocess
import sys


def ensure(packages):
    """`packages` maps a command to the Debian package that brings it; installs those whose
    command is not on PATH."""
    missing = sorted({package for command, package in packages.items()
                      if not shutil.which(command)})
    if not missing:
        return
    print(f"installing {' '.join(missing)} (Debian packages)", file=sys.stderr)
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(sudo + ["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(
        sudo + ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
        check=True, env=env, stdout=subprocess.DEVNULL,
    )
