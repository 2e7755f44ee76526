# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A real Xen dom0 that boots like a real host: GRUB from its own disk, so that installing a
hypervisor package changes what the next boot runs (the reboot fallback's testbed).

    python3 tests/testbed/grub_image.py build                 # once: about 2-4 min
    python3 tests/testbed/grub_image.py up --run-dir DIR      # cold boot through GRUB, PV guest started
    python3 tests/testbed/grub_image.py down --run-dir DIR

`build` (needs the testbed cache of build_testbed.py, and grub-pc-bin, installed here with apt):
resumes the 4.17.5 snapshot once, installs Debian's xen-hypervisor-common and
xen-hypervisor-4.17-amd64 4.17.5 packages in the dom0 (dpkg -i: /boot/xen-4.17-amd64.gz), puts
the 4.17.7 packages in /root/fixed-debs/ (for the test to install), writes /boot/grub/grub.cfg
(default entry: multiboot2 /boot/xen-4.17-amd64.gz, the dom0 kernel and initrd as module2) and a
small PV guest's config /etc/xen/tiny.cfg (the dom0 kernel and initrd, 256 MiB, stopping in the
initramfs shell), then stops the VM. It also builds a GRUB image (grub-mkimage i386-pc behind
lnxboot.img) that QEMU takes as -kernel: GRUB then reads grub.cfg from the VM's disk.

`up` starts a clone (thin qcow2 on the built disk) through GRUB, without -no-reboot and without
Xen's noreboot, so that `reboot` in the dom0 boots again through GRUB; waits for SSH; starts the
guest (`xl create /etc/xen/tiny.cfg`, 512 MiB); writes DIR/hosts.json and an Ansible inventory
DIR/inventory.yml. `down` stops the QEMU and removes DIR.

Measured (2 cores shared with other VMs): build 4-5 min, GRUB cold boot to SSH about 250 s, the
reboot fallback run (save 512 MiB guest, reboot through GRUB into 4.17.7, restore) about 4 min.

Nothing here changes the other testbed files; the colleague's build and hosts stay as they are.
"""

import argparse
import hashlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import testbed_lib as tb  # noqa: E402
import hosts as tb_hosts  # noqa: E402

GRUB_MODULES = ("biosdisk", "part_msdos", "ext2", "normal", "configfile", "multiboot2", "multiboot", "gzio",
                "serial", "terminal", "echo", "test", "ls", "cat", "search")
XEN_ARGS = "console=com1 com1=115200,8n1 dom0_mem=1024M,max:1024M loglvl=all guest_loglvl=all"
GUEST = "tiny"


def grub_dir(layout):
    return layout.root / "grub-image" / tb.image_key()


def grub_cfg(kernel, initrd):
    return f"""# noreboot.xen testbed: GRUB boots Xen from this disk (tests/testbed/grub_image.py)
serial --unit=0 --speed=115200
terminal_input serial
terminal_output serial
set timeout=1
set default="Debian GNU/Linux, with Xen hypervisor"
menuentry 'Debian GNU/Linux, with Xen hypervisor' --class debian --class xen --id xen-gnulinux-simple {{
\techo\t'Loading Xen 4.17-amd64 ...'
\tmultiboot2\t/boot/xen-4.17-amd64.gz placeholder {XEN_ARGS}
\techo\t'Loading Linux {kernel} ...'
\tmodule2\t/boot/{kernel} placeholder {tb.DOM0_CMDLINE}
\tmodule2\t--nounzip /boot/{initrd}
}}
menuentry 'Debian GNU/Linux (no Xen)' --id gnulinux-simple {{
\tlinux\t/boot/{kernel} {tb.DOM0_CMDLINE}
\tinitrd\t/boot/{initrd}
}}
"""


def guest_cfg(kernel, initrd):
    # 512 MiB: the dom0's initrd (MODULES=most) unpacks to more than 256 MiB ("Initramfs unpacking
    # failed: write error", then the guest crashes). break=top: the guest idles in its initramfs shell.
    return (f'# A small PV guest for the reboot fallback test: the dom0 kernel, idling in its initramfs shell.\n'
            f'name = "{GUEST}"\ntype = "pv"\nkernel = "/boot/{kernel}"\nramdisk = "/boot/{initrd}"\n'
            f'extra = "console=hvc0 break=top"\nmemory = 512\nvcpus = 1\non_crash = "preserve"\n')


def put(port, key, data, dest, mode="0644"):
    """Write bytes to a file in the dom0 (over SSH stdin)."""
    argv = tb.ssh_argv(port, key, ["sh", "-c", f"cat > {shlex.quote(dest)} && chmod {mode} {shlex.quote(dest)}"])
    proc = subprocess.run(argv, input=data, capture_output=True, timeout=300, check=False)
    if proc.returncode != 0:
        raise tb.TestbedError(f"writing {dest} in the dom0 failed: {proc.stderr.decode(errors='replace')}")


def ensure_grub_tools(logdir):
    if not Path("/usr/lib/grub/i386-pc/lnxboot.img").exists():
        tb.run(["apt-get", "install", "-y", "-q", "grub-pc-bin"], env={"DEBIAN_FRONTEND": "noninteractive"},
               logfile=logdir / "apt-grub.log")


def common_deb(layout, build, logdir):
    """xen-hypervisor-common of the build (apt-get download into the build's debs directory)."""
    debs = layout.debs(build)
    found = sorted(debs.glob(f"xen-hypervisor-common_{build.debian_version}_*.deb"))
    if not found:
        tb.run(["apt-get", "download", f"xen-hypervisor-common={build.debian_version}"], cwd=debs,
               logfile=logdir / f"download-common-{build.version}.log")
        found = sorted(debs.glob("xen-hypervisor-common_*.deb"))
    return [p for p in found if build.debian_version in p.name][0]


def hypervisor_deb(layout, build):
    return sorted(p for p in layout.debs(build).glob("xen-hypervisor-4.17-amd64_*.deb"))[0]


# Packages the fixed-package repository carries besides the fixed hypervisor: the Ansible apt
# module needs python3-apt in the dom0 and installs it itself (with apt-get) when it is missing.
APT_MODULE_DEBS = ("python3-apt", "python-apt-common", "distro-info-data")
REPO_DIR = "/root/fixed-repo"


def apt_module_debs(layout, logdir):
    """python3-apt and what it needs that the minbase dom0 lacks (apt-get download, cached)."""
    where = layout.root / "debs" / "apt-module"
    where.mkdir(parents=True, exist_ok=True)
    found = {p.name.split("_")[0]: p for p in where.glob("*.deb")}
    missing = [name for name in APT_MODULE_DEBS if name not in found]
    if missing:
        tb.run(["apt-get", "download", *missing], cwd=where, logfile=logdir / "download-apt-module.log")
        found = {p.name.split("_")[0]: p for p in where.glob("*.deb")}
    return [found[name] for name in APT_MODULE_DEBS]


def packages_index(debs):
    """A flat apt repository's Packages file for these .deb files (as dpkg-scanpackages writes it)."""
    stanzas = []
    for deb in debs:
        control = tb.run(["dpkg-deb", "-f", str(deb)], capture=True).stdout.rstrip("\n")
        data = deb.read_bytes()
        stanzas.append(f"{control}\nFilename: ./{deb.name}\nSize: {len(data)}\n"
                       f"MD5sum: {hashlib.md5(data).hexdigest()}\nSHA256: {hashlib.sha256(data).hexdigest()}\n")
    return "\n".join(stanzas)


def offer_fixed_packages(host, layout, new):
    """Makes the fixed hypervisor installable with apt in the dom0, as a mirror carrying the
    security update would: a flat repository in REPO_DIR holding Debian's 4.17.7 packages (and
    python3-apt for Ansible's apt module) becomes the dom0's only apt source (the dom0 has no
    network mirror). Returns the repository's package file names."""
    logdir = layout.root / "logs"
    debs = [common_deb(layout, new, logdir), hypervisor_deb(layout, new), *apt_module_debs(layout, logdir)]
    port, key = host["port"], Path(host["identity_file"])
    tb.ssh(port, key, ["sh", "-c", f"mkdir -p {REPO_DIR} /root/apt-sources-disabled && "
                                   "mv /etc/apt/sources.list /etc/apt/sources.list.d/* /root/apt-sources-disabled/ "
                                   "2>/dev/null; true"])
    for deb in debs:
        put(port, key, deb.read_bytes(), f"{REPO_DIR}/{deb.name}")
    put(port, key, packages_index(debs).encode(), f"{REPO_DIR}/Packages")
    put(port, key, f"deb [trusted=yes] file:{REPO_DIR} ./\n".encode(),
        "/etc/apt/sources.list.d/noreboot-testbed-fixed.list")
    return [deb.name for deb in debs]


def build_image(layout, old, new):
    out = grub_dir(layout)
    if (out / ".done").exists():
        tb.log(f"GRUB image: cached in {out}")
        return out
    logdir = layout.root / "logs"
    logdir.mkdir(parents=True, exist_ok=True)
    ensure_grub_tools(logdir)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    core = out / "core.img"
    tb.run(["grub-mkimage", "-O", "i386-pc", "-o", str(core), "-p", "(hd0)/boot/grub", *GRUB_MODULES],
           logfile=logdir / "grub-mkimage.log")
    with open(out / "grub.img", "wb") as handle:
        handle.write(Path("/usr/lib/grub/i386-pc/lnxboot.img").read_bytes() + core.read_bytes())
    debs = [common_deb(layout, old, logdir), hypervisor_deb(layout, old)]
    fixed = [common_deb(layout, new, logdir), hypervisor_deb(layout, new)]
    prep = out / "prep"
    host = tb_hosts.start_clone("grubprep", old, layout, prep)
    try:
        tb_hosts.resume_and_check(host, 600)
        port, key = host["port"], Path(host["identity_file"])
        boot = tb.ssh(port, key, ["ls", "/boot"]).stdout.decode().split()
        kernel = sorted(n for n in boot if n.startswith("vmlinuz-"))[-1]
        initrd = sorted(n for n in boot if n.startswith("initrd.img-"))[-1]
        tb.ssh(port, key, ["mkdir", "-p", "/root/debs", "/root/fixed-debs", "/boot/grub"])
        for deb in debs:
            put(port, key, deb.read_bytes(), f"/root/debs/{deb.name}")
        for deb in fixed:
            put(port, key, deb.read_bytes(), f"/root/fixed-debs/{deb.name}")
        tb.ssh(port, key, ["sh", "-c", "dpkg -i /root/debs/*.deb"], timeout=600)
        put(port, key, grub_cfg(kernel, initrd).encode(), "/boot/grub/grub.cfg")
        put(port, key, guest_cfg(kernel, initrd).encode(), f"/etc/xen/{GUEST}.cfg")
        tb.ssh(port, key, ["sh", "-c", "sync; echo s > /proc/sysrq-trigger; echo u > /proc/sysrq-trigger; sync"],
               check=False)
        time.sleep(3)
    finally:
        tb_hosts.stop_pid(host["pid"], prep)
    disk = out / "disk.qcow2"
    shutil.move(str(prep / "grubprep" / "disk.qcow2"), str(disk))
    shutil.rmtree(prep, ignore_errors=True)
    (out / ".done").write_text(json.dumps({"kernel": kernel, "initrd": initrd, "base": old.debian_version,
                                           "fixed_debs": [d.name for d in fixed]}) + "\n")
    tb.log(f"GRUB image built in {out}")
    return out


# The CPU model of the GRUB host. With "max" (AVX2, AVX-512, CLMUL... emulated by QEMU 7.2's TCG),
# runs of this host failed at random with data corrupted inside the guest: "lzma error: compressed
# data is corrupt" unpacking a .deb whose sha256 apt had just checked, a module's JSON output lost,
# dpkg -i failing. A plain x86-64 model without AVX is enough for Xen 4.17 and the Debian dom0.
GRUB_HOST_CPU = "Nehalem-v1"


def qemu_argv(grub_img, disk, port, serial, qmp_path, pidfile):
    return [
        "qemu-system-x86_64", "-M", "pc", "-cpu", GRUB_HOST_CPU, "-smp", "2",
        "-m", str(tb.GUEST_RAM_MB), "-accel", "tcg,thread=multi",
        "-display", "none", "-vga", "none", "-nodefaults",
        "-serial", f"file:{serial}", "-qmp", f"unix:{qmp_path},server=on,wait=off",
        "-kernel", str(grub_img),
        "-drive", f"file={disk},if=virtio,format=qcow2,cache=unsafe",
        "-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:22",
        "-device", "virtio-net-pci,netdev=n0", "-pidfile", str(pidfile),
    ]


def up(layout, run_dir, old, timeout):
    image = grub_dir(layout)
    if not (image / ".done").exists():
        raise tb.TestbedError(f"no GRUB image in {image}: run `grub_image.py build` first")
    if run_dir.exists():
        raise tb.TestbedError(f"{run_dir} exists: run `grub_image.py down --run-dir {run_dir}` first")
    host_dir = run_dir / "xengrub"
    host_dir.mkdir(parents=True)
    disk = host_dir / "disk.qcow2"
    tb.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(image / "disk.qcow2"), str(disk)])
    port = tb.free_port()
    serial = host_dir / "serial.log"
    argv = qemu_argv(image / "grub.img", disk, port, serial, host_dir / "qmp.sock", host_dir / "qemu.pid")
    started = time.monotonic()
    with open(host_dir / "qemu.log", "wb") as qlog:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=qlog, stderr=subprocess.STDOUT,
                                start_new_session=True)
    key = layout.ssh_key()
    host = {"name": "xengrub", "address": "127.0.0.1", "port": port, "user": "root", "identity_file": str(key),
            "pid": proc.pid, "run_dir": str(host_dir), "serial_log": str(serial)}
    (run_dir / "hosts.json").write_text(json.dumps({"hosts": [host]}, indent=1) + "\n")
    try:
        tb.wait_for_ssh(port, key, timeout, alive=lambda: proc.poll() is None)
        host["ready_seconds"] = round(time.monotonic() - started, 1)
        # The guest's config as this file says (an image built by an older grub_image.py may hold another).
        done = json.loads((image / ".done").read_text())
        put(port, key, guest_cfg(done["kernel"], done["initrd"]).encode(), f"/etc/xen/{GUEST}.cfg")
        tb.ssh(port, key, ["sh", "-c", f"date -u -s @{int(time.time())} >/dev/null && hostname xengrub && "
                                       f"xl create /etc/xen/{GUEST}.cfg"], timeout=600)
        wait_guest_ready(port, key, GUEST, 600)
        out = tb.ssh(port, key, ["sh", "-c", "xl info | grep ^build_id; xl list"], timeout=300).stdout.decode()
        if f"\n{GUEST} " not in out or "---sc-" in out or "--p--" in out:
            raise tb.TestbedError(f"the guest {GUEST} does not run after xl create:\n{out}")
    except (tb.TestbedError, OSError, subprocess.TimeoutExpired) as exc:
        raise tb.TestbedError(f"the GRUB host did not come up: {exc}\n--- serial log tail ({serial}) ---\n"
                              f"{tb.tail(serial)}") from None
    host["boot"] = out
    (run_dir / "hosts.json").write_text(json.dumps({"hosts": [host]}, indent=1) + "\n")
    (run_dir / "inventory.yml").write_text(
        "all:\n  hosts:\n    xengrub:\n"
        f"      ansible_host: 127.0.0.1\n      ansible_port: {port}\n      ansible_user: root\n"
        f"      ansible_ssh_private_key_file: {key}\n"
        "      ansible_ssh_common_args: -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null\n"
        "      ansible_python_interpreter: /usr/bin/python3\n"
        "      noreboot_xen_failure_domain: testbed\n")
    tb.log(f"xengrub up on port {port} in {host['ready_seconds']} s:\n{out}")
    return host


def wait_guest_ready(port, key, name, timeout):
    """Waits until the guest's kernel has set up its xenbus shutdown watch: it then writes
    control/feature-suspend in xenstore. Before that, `xl save` fails with "guest didn't
    acknowledge suspend" (a PV guest still booting under TCG takes a minute or more)."""
    script = (f"d=$(xl domid {shlex.quote(name)}) && "
              "xenstore-read /local/domain/$d/control/feature-suspend 2>/dev/null")
    deadline = time.monotonic() + timeout
    while True:
        proc = tb.ssh(port, key, ["sh", "-c", script], timeout=120, check=False)
        if proc.returncode == 0 and proc.stdout.decode().strip() == "1":
            return
        if time.monotonic() > deadline:
            raise tb.TestbedError(f"guest {name} did not advertise control/feature-suspend within {timeout} s "
                                  f"(its kernel has not finished booting): {proc.stdout.decode()!r} "
                                  f"{proc.stderr.decode(errors='replace')[-300:]}")
        time.sleep(5)


def down(run_dir):
    state = run_dir / "hosts.json"
    if state.exists():
        for host in json.loads(state.read_text())["hosts"]:
            pid = host["pid"]
            for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    break
                deadline = time.monotonic() + wait
                while time.monotonic() < deadline:
                    try:
                        os.kill(pid, 0)
                    except ProcessLookupError:
                        break
                    time.sleep(0.1)
    shutil.rmtree(run_dir, ignore_errors=True)
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("command", choices=["build", "up", "down"])
    parser.add_argument("--run-dir", type=Path, default=Path("/tmp/noreboot-xen-grub"))
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()
    layout = tb.Layout()
    old, new = tb.BUILDS["4.17.5"], tb.BUILDS["4.17.7"]
    if args.command == "build":
        build_image(layout, old, new)
    elif args.command == "up":
        up(layout, args.run_dir, old, args.timeout)
    else:
        down(args.run_dir)
    return 0


if __name__ == "__main__":
    tb.main_guard(main)
