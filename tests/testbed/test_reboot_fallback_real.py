# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The reboot fallback on a real Xen host booted by GRUB (tests/testbed/grub_image.py).

The host starts on Debian's Xen 4.17.5 (build-id 39a640e6...) with a small PV guest running.
The dom0's apt source is a flat repository holding Debian's fixed packages (4.17.7, as a mirror
carrying the security update would; grub_image.offer_fixed_packages). playbooks/reboot_fallback.yml
then runs the whole role: apt installs xen-hypervisor-4.17-amd64 4.17.7 (the apt module first
installs python3-apt itself), GRUB's default entry is checked against the fixed build-id, the guest
is saved, the host reboots through GRUB, and during that one reboot the controller (ansible-playbook) is
SIGKILLed (issue 14). The host comes back on build-id 151b373f... with the guest saved on its disk, not
running; the same command run again plans the host finish_reboot and restores the guest from its image:
it runs, and it is the same domain state, not a fresh boot (a token written into the guest's memory from
its console before the run reads back the same, and its uptime went on). Planned again with the same
advisory, the host is not affected.

Needs root, the testbed cache (build_testbed.py) and the GRUB image (`grub_image.py build`);
skipped otherwise. About 5-10 minutes on a busy 2-core machine (two boots under TCG: the first boot and the
one reboot).
"""

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent

import grub_image
import testbed_lib as tb
from xen_builds import XEN_4175 as OLD, XEN_4177 as FIXED
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


# Runs in the dom0: talks to the guest's console (`xl console` wants a terminal: a pty), sends one shell line
# to its initramfs shell and prints what it answers between NRX-BEGIN and NRX-END (the line as typed, echoed
# back, reads NRX-""BEGIN, so only the shell's answer matches).
CONSOLE_SCRIPT = r"""
import os, pty, re, select, sys, time
line = sys.argv[2].encode() + b"\n"
pid, fd = pty.fork()
if pid == 0:
    os.execvp("xl", ["xl", "console", sys.argv[1]])
seen, deadline, resend = b"", time.time() + 180, 0
while time.time() < deadline:
    if time.time() >= resend:
        os.write(fd, b"\n" + line)
        resend = time.time() + 20
    if select.select([fd], [], [], 1)[0]:
        try:
            seen += os.read(fd, 4096)
        except OSError:
            break
        found = re.search(rb"NRX-BEGIN (.*?) NRX-END", seen)
        if found:
            print(found.group(1).decode())
            os.kill(pid, 9)
            sys.exit(0)
os.kill(pid, 9)
sys.stderr.write(seen[-3000:].decode(errors="replace"))
sys.exit(1)
"""
MARKER = "/nrx-marker"


def guest_console(host, shell_line):
    """One line typed at the guest's console shell; its answer between the markers, as a list of words."""
    remote = ["python3", "-c", CONSOLE_SCRIPT, grub_image.GUEST, shell_line]
    proc = tb.ssh(host["port"], Path(host["identity_file"]), remote, timeout=300, check=False)
    assert proc.returncode == 0, "no answer on the guest's console: %s" % proc.stderr.decode(errors="replace")
    return proc.stdout.decode().split()


def guest_marker_and_uptime(host, write_token=None):
    """The token the guest keeps in its memory (its initramfs root, gone on any fresh boot) and its uptime."""
    prefix = "echo %s > %s; " % (write_token, MARKER) if write_token else ""
    words = guest_console(host, prefix + 'read m < %s; read u rest < /proc/uptime; echo NRX-""BEGIN "$m" "$u" NRX-""END'
                          % MARKER)
    return words[0], float(words[1])


def reboots_seen(host):
    """How often Xen has booted on this VM so far (its banner on the serial console)."""
    return Path(host["serial_log"]).read_text(encoding="utf-8", errors="replace").count("Xen version 4.17")


def run_playbook(host, name, extra, log):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO / ".cache" / "collections"),
               ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false", ANSIBLE_NOCOLOR="1", ANSIBLE_HOST_KEY_CHECKING="False",
               ANSIBLE_TIMEOUT="120", ANSIBLE_PIPELINING="1")
    argv = [str(REPO / ".venv" / "bin" / "ansible-playbook"), "-i", host["inventory"], str(REPO / "playbooks" / name),
            "-e", json.dumps(extra)]
    handle = open(log, "w", encoding="utf-8")  # pylint: disable=consider-using-with
    return subprocess.Popen(argv, cwd=str(REPO), env=env, stdout=handle, stderr=subprocess.STDOUT,
                            start_new_session=True), handle


def test_controller_killed_during_the_grub_reboot_then_the_rerun_restores_the_same_guest(grub_host):
    """Issue 14: the controller dies during the one reboot of this host; the same command run again restores
    the real PV guest from its save image: the same domain state (its console marker, its uptime going on)."""
    before = ssh(grub_host, "xl info | grep ^build_id; xl list")
    assert OLD in before
    assert "\ntiny " in before, before
    token = "nrx-%d" % time.time()
    marker, uptime_before = guest_marker_and_uptime(grub_host, write_token=token)
    assert marker == token
    offered = grub_image.offer_fixed_packages(grub_host, LAYOUT, tb.BUILDS["4.17.7"])
    assert "xen-hypervisor-4.17-amd64_4.17.7+13-g2445b30a44-0+deb12u1_amd64.deb" in offered
    assert "Version: 4.17.5" in ssh(grub_host, "dpkg -s xen-hypervisor-4.17-amd64")
    workdir = Path(grub_host["workdir"])
    advisory = workdir / "testbed-xsa-1.yml"
    advisory.write_text(ADVISORY)
    extra = {"noreboot_xen_advisories": [str(advisory)], "noreboot_xen_reboot_ok": True,
             "reboot_fallback_guest_policy": "save", "reboot_fallback_reboot_timeout": 1200,
             "reboot_fallback_update_cache": True}

    # 1. The controller is SIGKILLed while the host reboots through GRUB (its reboot wait under way).
    boots = reboots_seen(grub_host)
    killed_log = workdir / "playbook-killed.log"
    controller, handle = run_playbook(grub_host, "reboot_fallback.yml",
                                      dict(extra, noreboot_xen_summary_path=str(workdir / "summary-killed.json")),
                                      killed_log)
    try:
        deadline = time.monotonic() + 1800
        while reboots_seen(grub_host) == boots:
            assert controller.poll() is None, "the playbook ended before the reboot:\n" + killed_log.read_text()[-6000:]
            assert time.monotonic() < deadline, "the host was never rebooted"
            time.sleep(1)
        assert controller.poll() is None, killed_log.read_text()[-6000:]
        assert "TASK [noreboot.xen.reboot_fallback : Reboot into the fixed hypervisor" in killed_log.read_text()
        os.killpg(controller.pid, signal.SIGKILL)
        controller.wait()
    finally:
        handle.close()
        if controller.poll() is None:
            os.killpg(controller.pid, signal.SIGKILL)
    print("controller killed during the reboot, log %s" % killed_log)

    # 2. The host comes back by itself on the fixed build; the guest is saved on its disk, not running.
    tb.wait_for_ssh(grub_host["port"], Path(grub_host["identity_file"]), 1500)
    down = ssh(grub_host, "xl info | grep ^build_id; xl list; cat /var/lib/noreboot-xen/ledger.jsonl")
    print(down)
    assert FIXED in down
    assert "\ntiny " not in down, down
    manifest = json.loads(ssh(grub_host, "cat /var/lib/noreboot-xen/guests.json"))
    assert manifest["status"] == "evacuated", manifest
    assert [(g["name"], g["state"]) for g in manifest["guests"]] == [("tiny", "saved")], manifest
    ledger = [json.loads(line) for line in down.splitlines() if line.startswith('{')]
    assert [(e["event"], e["kind"]) for e in ledger] == [("intent", "reboot_fallback")], ledger
    killed_run = ledger[0]["run_id"]

    # 3. The same command again: the plan finishes the host first, the guest is restored from its image.
    summary_path = workdir / "summary.json"
    log = workdir / "playbook.log"
    rerun, handle = run_playbook(grub_host, "reboot_fallback.yml", dict(extra, noreboot_xen_summary_path=str(summary_path)),
                                 log)
    with handle:
        rc = rerun.wait()
    print("rerun rc %d, log %s" % (rc, log))
    assert rc == 0, failure_report(grub_host, log)
    summary = json.loads(summary_path.read_text())
    rows = {r["host"]: r for r in summary["hosts"]}
    assert rows["xengrub"]["wave"] == "finish" and rows["xengrub"]["outcome"] == "rebooted", rows
    assert "finished the reboot fallback of run %s" % killed_run in rows["xengrub"]["msg"], rows
    after = ssh(grub_host, "xl info | grep ^build_id; xl list; dpkg-query -W xen-hypervisor-4.17-amd64 python3-apt; "
                           "cat /var/lib/noreboot-xen/ledger.jsonl")
    print(after)
    assert FIXED in after
    # The guest is back and runs (state r or b: not paused, shut down, crashed or dying).
    tiny = [line.split() for line in after.splitlines() if line.startswith("tiny ")]
    assert len(tiny) == 1 and tiny[0][4].strip("-") in ("r", "b"), after
    # It is the same domain state, not a fresh boot: the token is still in its memory, its uptime went on.
    marker, uptime_after = guest_marker_and_uptime(grub_host)
    print("guest marker %s, uptime %.0f s before, %.0f s after" % (marker, uptime_before, uptime_after))
    assert marker == token
    assert uptime_after > uptime_before
    # apt installed the fixed package (and the apt module's python3-apt) from the repository.
    assert "xen-hypervisor-4.17-amd64\t4.17.7+13-g2445b30a44-0+deb12u1" in after
    assert "python3-apt\t2." in after
    # Planned again with the same advisory, the host is no longer affected: nothing left to do.
    plan_path = workdir / "plan-after.json"
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO / ".cache" / "collections"),
               ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false", ANSIBLE_NOCOLOR="1", ANSIBLE_HOST_KEY_CHECKING="False",
               ANSIBLE_TIMEOUT="120", ANSIBLE_PIPELINING="1")
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
    assert ledger[1]["resumed_run_id"] == killed_run
