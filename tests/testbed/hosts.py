"""Starts and stops real Xen hosts (QEMU VMs) resumed from the testbed's booted snapshots.

    python3 tests/testbed/hosts.py up --host xen4175=4.17.5 --host xen4177=4.17.7 [--run-dir DIR]
    python3 tests/testbed/hosts.py up --host c=4.20.4 [--run-dir DIR]   # Debian 13's Xen 4.20
    python3 tests/testbed/hosts.py status [--run-dir DIR]
    python3 tests/testbed/hosts.py down [--run-dir DIR]

Each host is a clone: a thin qcow2 overlay on the build's snapshot disk and QEMU started
with `-incoming` from the saved state, then `cont`: it answers on SSH in seconds.
Its SSH port on 127.0.0.1 is chosen free at start. `up` writes DIR/hosts.json:

    {"hosts": [{"name", "address", "port", "user", "identity_file", "xen_version",
                "debian_version", "build_id", "pid", "serial_log", ...}]}

`down` stops every QEMU listed there (and any whose pid file is in DIR), checks their
ports are free again and removes DIR. Build the snapshots first: build_testbed.py.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import testbed_lib as tb  # noqa: E402

STATE_NAME = "hosts.json"
MAX_HOSTS = 3  # each VM takes about 2 GiB and a good part of a core


def parse_host_spec(spec: str) -> tuple[str, tb.XenBuild]:
    name, sep, version = spec.partition("=")
    if not sep or not name or version not in tb.ALL_BUILDS:
        raise tb.TestbedError(f"--host wants NAME=VERSION with VERSION one of "
                              f"{', '.join(tb.ALL_BUILDS)}; got {spec!r}")
    if not name.replace("-", "").replace("_", "").isalnum():
        raise tb.TestbedError(f"host name must be letters, digits, - and _: {name!r}")
    return name, tb.ALL_BUILDS[version]


def pid_alive(pid: int) -> bool:
    """True while the process exists and is not a zombie. A QEMU started by this very
    process (up and down in one program, as in tests) is reaped here."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass  # not our child: init reaps it
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def is_our_qemu(pid: int, run_dir: Path) -> bool:
    """True when pid is a QEMU started for run_dir (its command line names run_dir)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return (bool(cmdline) and cmdline[0].endswith(b"qemu-system-x86_64")
            and any(str(run_dir).encode() in arg for arg in cmdline))


def start_clone(name: str, build: tb.XenBuild, layout: tb.Layout, run_dir: Path) -> dict:
    """Creates the overlay and starts QEMU resuming from the build's snapshot."""
    golden = layout.golden(build)
    if not (golden / ".done").exists():
        raise tb.TestbedError(f"no booted snapshot for {build.version} in {golden}: "
                              f"run tests/testbed/build_testbed.py"
                              f"{'' if build.series == '4.17' else ' --generation ' + build.series}"
                              f" first")
    host_dir = run_dir / name
    if host_dir.exists():
        raise tb.TestbedError(f"{host_dir} exists: host {name} is already up (or was not "
                              f"stopped): run `hosts.py down --run-dir {run_dir}`")
    host_dir.mkdir(parents=True)
    disk = host_dir / "disk.qcow2"
    tb.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2",
            "-b", str(layout.golden_disk(build)), str(disk)])
    port = tb.free_port()
    serial = host_dir / "serial.log"
    qmp_path = host_dir / "qmp.sock"
    argv = tb.qemu_argv(xen_elf=layout.xen_elf(build), kernel=layout.dom0_kernel(build.suite),
                        initrd=layout.dom0_initrd(build.suite), disk=disk, port=port,
                        serial_log=serial,
                        qmp_socket=qmp_path, incoming_state=layout.golden_state(build),
                        pidfile=host_dir / "qemu.pid")
    with open(host_dir / "qemu.log", "wb") as qlog:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=qlog,
                                stderr=subprocess.STDOUT, start_new_session=True)
    return {
        "name": name, "address": "127.0.0.1", "port": port, "user": "root",
        "identity_file": str(layout.ssh_key(build.suite)), "xen_version": build.xen_version,
        "testbed_version": build.version,
        "debian_version": build.debian_version, "build_id": build.build_id,
        "payloads_dir": str(layout.payloads(build)), "pid": proc.pid,
        "run_dir": str(host_dir), "serial_log": str(serial), "qmp_socket": str(qmp_path),
        "_proc": proc,
    }


def resume_and_check(host: dict, timeout: float) -> None:
    """Waits for the incoming state, continues the VM, waits for SSH, sets the guest
    clock and hostname, and checks that the running Xen is the expected build."""
    proc = host["_proc"]
    key = Path(host["identity_file"])
    started = time.monotonic()
    try:
        qmp = tb.Qmp(Path(host["qmp_socket"]), timeout=60)
        deadline = time.monotonic() + 120
        while qmp.status() == "inmigrate":
            if time.monotonic() > deadline:
                raise tb.TestbedError("the saved state did not load within 120 s")
            time.sleep(0.2)
        host["state_load_seconds"] = round(time.monotonic() - started, 1)
        qmp.command("cont")
        qmp.close()
        tb.wait_for_ssh(host["port"], key, timeout, alive=lambda: proc.poll() is None)
        # The guest clock stood still while the snapshot was stored: set it. One SSH
        # session for the three commands: each handshake is slow under emulation.
        script = (f"date -u -s @{int(time.time())} >/dev/null && hostname {host['name']} "
                  f"&& xl info")
        info = tb.parse_xl_info(tb.ssh(host["port"], key, ["sh", "-c", script]).stdout.decode())
    except (tb.TestbedError, OSError, subprocess.TimeoutExpired) as exc:
        raise tb.TestbedError(f"host {host['name']} ({host['xen_version']}) did not come up: "
                              f"{exc}\n--- serial log tail ({host['serial_log']}) ---\n"
                              f"{tb.tail(Path(host['serial_log']))}\n--- QEMU output ---\n"
                              f"{tb.tail(Path(host['run_dir']) / 'qemu.log', 10)}") from None
    if info.get("build_id") != host["build_id"]:
        raise tb.TestbedError(f"host {host['name']}: xl info says build_id "
                              f"{info.get('build_id')}, expected {host['build_id']}")
    host["ready_seconds"] = round(time.monotonic() - started, 1)


def write_state(run_dir: Path, hosts: list[dict]) -> Path:
    state = run_dir / STATE_NAME
    public = [{k: v for k, v in h.items() if not k.startswith("_")} for h in hosts]
    tmp = state.with_suffix(".tmp")
    tmp.write_text(json.dumps({"hosts": public}, indent=2) + "\n")
    tmp.rename(state)
    return state


def read_state(run_dir: Path) -> list[dict]:
    state = run_dir / STATE_NAME
    if not state.exists():
        return []
    return json.loads(state.read_text())["hosts"]


def stop_pid(pid: int, run_dir: Path) -> None:
    """Stops one of our QEMUs and waits until the process is gone (not just exiting)."""
    if not is_our_qemu(pid, run_dir):
        return
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if not pid_alive(pid):
            return


def down(run_dir: Path) -> int:
    hosts = read_state(run_dir)
    pids = {h["pid"] for h in hosts}
    for pidfile in run_dir.glob("*/qemu.pid"):
        try:
            pids.add(int(pidfile.read_text().strip()))
        except (OSError, ValueError):
            pass
    for pid in sorted(pids):
        stop_pid(pid, run_dir)
    leftovers = [pid for pid in pids if pid_alive(pid) and is_our_qemu(pid, run_dir)]
    busy_ports = [h["port"] for h in hosts if tb.port_in_use(h["port"])]
    if run_dir.exists():
        shutil.rmtree(run_dir)
    if leftovers or busy_ports:
        raise tb.TestbedError(f"after stopping: QEMU pids still alive {leftovers}, "
                              f"ports still bound {busy_ports}")
    tb.log(f"stopped {len(hosts)} host(s); removed {run_dir}")
    return 0


def up(run_dir: Path, specs: list[str], timeout: float) -> int:
    wanted = [parse_host_spec(s) for s in specs]
    names = [n for n, _version in wanted]
    if len(set(names)) != len(names):
        raise tb.TestbedError(f"host names must differ: {names}")
    if len(wanted) > MAX_HOSTS:
        raise tb.TestbedError(f"at most {MAX_HOSTS} hosts at once on this machine")
    layout = tb.Layout()
    run_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    hosts: list[dict] = []
    try:
        for name, build in wanted:
            hosts.append(start_clone(name, build, layout, run_dir))
            write_state(run_dir, hosts)  # so `down` finds them even if we fail below
        # Resume all at once: each waits mostly on its own VM.
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(hosts)) as pool:
            for job in [pool.submit(resume_and_check, h, timeout) for h in hosts]:
                job.result()
    except BaseException:
        tb.log("start failed: stopping the hosts started so far")
        for host in hosts:  # also when their files are gone
            stop_pid(host["pid"], run_dir)
        try:
            down(run_dir)
        except tb.TestbedError as exc:
            tb.log(f"cleanup: {exc}")
        raise
    state = write_state(run_dir, hosts)
    for host in hosts:
        tb.log(f"{host['name']}: Xen {host['xen_version']} build_id {host['build_id']} "
               f"ssh root@127.0.0.1 -p {host['port']} (ready in {host['ready_seconds']} s, "
               f"state loaded in {host['state_load_seconds']} s)")
    tb.log(f"{len(hosts)} host(s) up in {time.monotonic() - started:.1f} s; state: {state}")
    return 0


def status(run_dir: Path) -> int:
    hosts = read_state(run_dir)
    if not hosts:
        print(f"no hosts in {run_dir}")
        return 0
    for host in hosts:
        alive = pid_alive(host["pid"]) and is_our_qemu(host["pid"], run_dir)
        print(f"{host['name']}: {'running' if alive else 'NOT RUNNING'} Xen "
              f"{host['xen_version']} port {host['port']} pid {host['pid']}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("up", "down", "status"))
    parser.add_argument("--run-dir", type=Path, default=None,
                        help="where clones and hosts.json live (default: $CACHE/run/default)")
    parser.add_argument("--host", action="append", default=[], metavar="NAME=VERSION",
                        help="a host to start (repeatable); default: "
                             "xen4175=4.17.5 and xen4177=4.17.7")
    parser.add_argument("--timeout", type=float, default=180,
                        help="seconds for a resumed host to answer on SSH")
    args = parser.parse_args()
    run_dir = (args.run_dir or tb.Layout().default_run_dir()).resolve()
    if args.command == "up":
        tb.require_root_and_apt()
        return up(run_dir, args.host or ["xen4175=4.17.5", "xen4177=4.17.7"], args.timeout)
    if args.command == "down":
        return down(run_dir)
    return status(run_dir)


if __name__ == "__main__":
    tb.main_guard(main)
