"""Offline stand-in for the get-pip bootstrap script that ansible-test downloads.

ansible-test creates virtual environments for its sanity tests and bootstraps pip in them
by running ``python get-pip.py <pip options> <packages>``. The download host is not
reachable here, so this script installs the requested packages with the pip wheel that
CPython bundles in ``ensurepip`` (packages themselves still come from the package index).
"""
import glob
import os
import subprocess
import sys

import ensurepip


def main():
    bundled = sorted(glob.glob(os.path.join(os.path.dirname(ensurepip.__file__), '_bundled', 'pip-*.whl')))
    if not bundled:
        sys.exit('get_pip_offline: no pip wheel bundled with this Python (%s)' % sys.executable)
    args = [arg for arg in sys.argv[1:] if arg not in ('--no-setuptools', '--no-wheel')]
    argv = [sys.executable, os.path.join(bundled[-1], 'pip'), 'install', '--disable-pip-version-check'] + args
    sys.exit(subprocess.call(argv))


if __name__ == '__main__':
    main()
