"""Testinfra checks on the real Xen hosts of the `xen` scenario.

After converge, xen4175 (Xen 4.17.5) runs xen_hello_world, APPLIED, and `xl info` says
`xen_extra : Hello World`; xen4177 (Xen 4.17.7) refused the 4.17.5 payload and has nothing
loaded. After side_effect (phase file `reverted`), both are back to their own version.
"""

import json
import os
import re
from pathlib import Path

import pytest

EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])


def phase() -> str:
    marker = EPHEMERAL / "xen-phase"
    return marker.read_text().strip() if marker.exists() else "converged"


def expected_host(host) -> dict:
    name = host.backend.get_hostname()
    hosts = json.loads((EPHEMERAL / "testbed" / "hosts.json").read_text())["hosts"]
    return next(h for h in hosts if h["name"] == name)


def xl_info(host) -> dict:
    out = host.check_output("xl info")
    return {k.strip(): v.strip() for k, _sep, v in
            (line.partition(":") for line in out.splitlines()) if _sep}


def test_running_build_is_the_testbed_build(host):
    expected = expected_host(host)
    info = xl_info(host)
    assert info["build_id"] == expected["build_id"]
    assert info["xen_version"] in (expected["xen_version"], "4.17Hello World")


def test_xen_extra_and_payload_list(host):
    expected = expected_host(host)
    info = xl_info(host)
    listing = host.run("xen-livepatch list")
    assert listing.rc == 0, listing.stderr
    patched = expected["xen_version"] == "4.17.5" and phase() == "converged"
    if patched:
        assert info["xen_extra"] == "Hello World"
        assert re.search(r"(?m)^xen_hello_world\s+\| APPLIED\s+\| LIVEPATCH_RULEZ$", listing.stdout)
    else:
        minor = expected["xen_version"].rsplit(".", 1)[1]
        assert info["xen_extra"] == f".{minor}"
        assert listing.stdout.strip() == "Nothing to list"


@pytest.mark.parametrize("tool", ["/usr/sbin/xl", "/usr/sbin/xen-livepatch"])
def test_xen_tools_present(host, tool):
    assert host.exists(tool.rsplit("/", 1)[1])
