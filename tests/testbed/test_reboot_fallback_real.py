# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The reboot fallback on a real Xen host booted by GRUB (tests/testbed/grub_image.py).

The host starts on Debian's Xen 4.17.5 (build-id 39a640e6...) with a small PV guest running.
The dom0's apt source is a flat repository holding Debian's fixed packages (4.17.7, as a mirror
carrying the security update would; grub_image.offer_fixed_packages). playbooks/reboot_fallback.yml
then runs the whole role: apt installs xen-hypervisor-4.17-amd64 4.17.7 (the apt module first
installs python3-apt itself), GRUB's default entry is checked against the fixed build-id, the guest
is saved, the host reboots through GRUB, build-id 151b373f... runs, and the guest is restored;
planned again with the same advisory, the host is not affected.

Needs root, the testbed cache (build_testbed.py) and the GRUB image (`grub_image.py build`);
skipped otherwise. About 5-10 minutes on a busy 2-core machine (two boots under TCG).
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))

import testbed_lib as tb  # noqa: E402
import grub_image  # noqa: E402

OLD = "39a640e6f1412319235087391df9f1c5e13ae920"
FIXED = "151b373fd64b321593bf987fd923cd10dabadac4"
ADVISORY = f"""schema: 1
id: TESTBED-XSA-1
title: "testbed: a flaw fixed by Debian's Xen 4.17.7 (no live patch for 4.17.5)"
affected:
  hypervisors:
    versions: [">=4.17.0,<4.17.7"]
fallback:
  reboot: true
  fixed_build_ids: [{FIXED}]
  packages:
    debian: {{package: xen-hypervisor-4.17-amd64, version: "4.17.7+13-g2445b30a44-0+deb12u1"}}
"""

LAYOUT = tb.Layout()
READY = (grub_image.grub_dir(LAYOUT) / ".done").exists()
pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="the testbed needs root"),
    pytest.mark.skipif(not READY, reason="no GRUB image: run `python3 tests/testbed/grub_image.py build`"),
]


# Logs of the last run stay here (playbook log, the dom0's serial console, diagnostics) until the next.
WORKDIR = LAYOUT.root / "run" / "grub-reboot-fallback-test"


@pytest.fixture(scope="module")
def grub_host():
    shutil.rmtree(WORKDIR, ignore_errors=True)
    run_dir = WORKDIR / "run"
    try:
        host = grub_image.up(LAYOUT, run_dir, tb.BUILDS["4.17.5"], 900)
        yield dict(host, inventory=str(run_dir / "inventory.yml"), workdir=str(WORKDIR))
    finally:
        serial = run_dir / "xengrub" / "serial.log"
        if serial.exists():
            shutil.copyfile(serial, WORKDIR / "serial.log")
        grub_image.down(run_dir)


def failure_report(host, log):
    """What to read when the playbook failed: the first fatal task with its context, and the dom0's
    own view (kernel messages, journal, xl list, guest manifest), also kept in WORKDIR/diagnostics.txt."""
    lines = log.read_text().splitlines()
    first = next((i for i, line in enumerate(lines) if "fatal:" in line or "FAILED!" in line), len(lines) - 1)
    context = "\n".join(lines[max(0, first - 30):first + 25])
    proc = tb.ssh(host["port"], Path(host["identity_file"]), ["sh", "-c", (
        "xl list; cat /var/lib/noreboot-xen/guests.json; dmesg | tail -40; journalctl -b -n 60 --no-pager; "
        "free -m")], timeout=300, check=False)
    dom0 = proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")
    (WORKDIR / "diagnostics.txt").write_text(context + "\n--- dom0 ---\n" + dom0)
    return "playbook log %s, serial log %s/serial.log\n--- first failure ---\n%s\n--- dom0 ---\n%s" % (
        log, WORKDIR, context, dom0[-6000:])


def ssh(host, script, timeout=600):
    return tb.ssh(host["port"], Path(host["identity_file"]), ["sh", "-c", script], timeout=timeout).stdout.decode()


def test_fixed_package_save_reboot_through_grub_restore(grub_host):
    before = ssh(grub_host, "xl info | grep ^build_id; xl list")
    assert OLD in before
    assert "\ntiny " in before, before
    offered = grub_image.offer_fixed_packages(grub_host, LAYOUT, tb.BUILDS["4.17.7"])
    assert "xen-hypervisor-4.17-amd64_4.17.7+13-g2445b30a44-0+deb12u1_amd64.deb" in offered
    assert "Version: 4.17.5" in ssh(grub_host, "dpkg -s xen-hypervisor-4.17-amd64")
    advisory = Path(grub_host["workdir"]) / "testbed-xsa-1.yml"
    advisory.write_text(ADVISORY)
    summary_path = Path(grub_host["workdir"]) / "summary.json"
    extra = {"noreboot_xen_advisories": [str(advisory)], "noreboot_xen_reboot_ok": True,
             "reboot_fallback_guest_policy": "save", "reboot_fallback_reboot_timeout": 1200,
             "noreboot_xen_summary_path": str(summary_path), "reboot_fallback_update_cache": True}
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO / ".cache" / "collections"),
               ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false", ANSIBLE_NOCOLOR="1", ANSIBLE_HOST_KEY_CHECKING="False",
               ANSIBLE_TIMEOUT="120")
    log = Path(grub_host["workdir"]) / "playbook.log"
    with open(log, "w") as handle:
        rc = subprocess.call([str(REPO / ".venv" / "bin" / "ansible-playbook"), "-i", grub_host["inventory"],
                              str(REPO / "playbooks" / "reboot_fallback.yml"), "-e", json.dumps(extra)],
                             cwd=str(REPO), env=env, stdout=handle, stderr=subprocess.STDOUT)
    print("playbook rc %d, log %s" % (rc, log))
    assert rc == 0, failure_report(grub_host, log)
    summary = json.loads(summary_path.read_text())
    assert [(r["host"], r["outcome"]) for r in summary["hosts"]] == [("xengrub", "rebooted")]
    after = ssh(grub_host, "xl info | grep ^build_id; xl list; dpkg-query -W xen-hypervisor-4.17-amd64 python3-apt; "
                           "cat /var/lib/noreboot-xen/ledger.jsonl")
    print(after)
    assert FIXED in after
    # The guest is back and runs (state r or b: not paused, shut down, crashed or dying).
    tiny = [line.split() for line in after.splitlines() if line.startswith("tiny ")]
    assert len(tiny) == 1 and tiny[0][4].strip("-") in ("r", "b"), after
    # apt installed the fixed package (and the apt module's python3-apt) from the repository.
    assert "xen-hypervisor-4.17-amd64\t4.17.7+13-g2445b30a44-0+deb12u1" in after
    assert "python3-apt\t2." in after
    assert "\ntiny " in after
    # Planned again with the same advisory, the host is no longer affected: nothing left to do.
    plan_path = Path(grub_host["workdir"]) / "plan-after.json"
    proc = subprocess.run([str(REPO / ".venv" / "bin" / "ansible-playbook"), "-i", grub_host["inventory"],
                           str(REPO / "playbooks" / "plan.yml"), "-e",
                           json.dumps({"noreboot_xen_advisories": [str(advisory)],
                                       "noreboot_xen_plan_path": str(plan_path)})],
                          cwd=str(REPO), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    assert proc.returncode == 0, proc.stdout.decode(errors="replace")[-3000:]
    decision = json.loads(plan_path.read_text())["decisions"]["xengrub"]
    assert decision["decision"] == "not_affected", decision
    ledger = [json.loads(line) for line in after.splitlines() if line.startswith("{")]
    assert [(e["event"], e.get("outcome")) for e in ledger] == [("intent", None), ("outcome", "rebooted")]
    assert ledger[0]["hypervisor_build_id"] == OLD and ledger[1]["hypervisor_build_id"] == FIXED
