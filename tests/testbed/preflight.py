"""Says whether this machine can run the real Xen testbed.

Exit 0: it can. Exit 1: it cannot, with the reasons (loud). Exit 3: it cannot or need not,
but NOREBOOT_XEN_SKIP_TESTBED=1 asks to skip: callers treat 3 as "skip".
"""

import os
import shutil
import sys

MIN_MEMORY_GIB = 6  # two VMs of 2 GiB each, plus the build


def problems() -> list[str]:
    found = []
    if os.geteuid() != 0:
        found.append("not running as root (debootstrap, apt-get and image building need it)")
    if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        found.append("no apt-get/dpkg: the testbed is built from the Debian archive on Debian 12")
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            fields = dict(line.split(":", 1) for line in meminfo)
        available = int(fields["MemAvailable"].split()[0]) / (1024 * 1024)
        if available < MIN_MEMORY_GIB:
            found.append(f"only {available:.1f} GiB memory available, {MIN_MEMORY_GIB} needed")
    except (OSError, KeyError, ValueError):
        found.append("cannot read /proc/meminfo (not Linux?)")
    return found


def main() -> int:
    skip = os.environ.get("NOREBOOT_XEN_SKIP_TESTBED") == "1"
    found = problems()
    if skip:
        print("*" * 72 + "\n* Xen testbed SKIPPED: NOREBOOT_XEN_SKIP_TESTBED=1 is set."
              + ("\n* This machine could not run it anyway: " + "; ".join(found) if found else "")
              + "\n* Nothing was tested against a real hypervisor.\n" + "*" * 72, flush=True)
        return 3
    if found:
        print("*" * 72, file=sys.stderr)
        print("* ERROR: this machine cannot run the real Xen testbed:", file=sys.stderr)
        for problem in found:
            print(f"*   - {problem}", file=sys.stderr)
        print("* Run it as root on Debian 12 (see tests/testbed/README.md), or set\n"
              "* NOREBOOT_XEN_SKIP_TESTBED=1 to skip it knowingly.", file=sys.stderr)
        print("*" * 72, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
