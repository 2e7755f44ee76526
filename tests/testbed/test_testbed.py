"""Tests of the real Xen testbed itself (run by `make testbed-test` after the build).

* the transcript writer keeps bytes exact (no testbed needed);
* the committed transcripts name their build and read back;
* the cache holds both builds' payloads with the right .livepatch.xen_depends;
* a host starts from its snapshot, runs the expected Xen, and `down` leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

HERE = Path(__file__).resolve().parent

import capture_transcripts as capture
import hosts
import testbed_lib as tb

TRANSCRIPTS = HERE.parents[1] / "tests" / "fixtures" / "transcripts"


@pytest.mark.parametrize("text", [
    "",
    "Nothing to list\n",
    " ID                                     | status     | metadata\n"
    "xen_bye_world                           | APPLIED    | \n",
    "Name\tID   Mem VCPUs\tState\tTime(s)\n",
    "no newline at the end",
    "two newlines\n\n",
    "   \n  leading blank line\n",
    "\n",
    "Applying xen_nop... ",
])
def test_transcript_yaml_keeps_bytes_exact(tmp_path, text):
    step = {"argv": ["xen-livepatch", "list"], "rc": 0, "stdout": text.encode(),
            "stderr": b"Error 22: Invalid argument\n"}
    build = tb.BUILDS["4.17.5"]
    path = tmp_path / "t.yml"
    path.write_text(capture.render(build, "t", "test", [step]))
    capture.check_round_trip(path, [step])
    data = yaml.safe_load(path.read_text())
    assert data["steps"][0]["stdout"] == text
    assert data["build"]["build_id"] == build.build_id


@pytest.mark.parametrize("version", sorted(tb.ALL_BUILDS))
def test_committed_transcripts_name_their_build(version):
    files = sorted((TRANSCRIPTS / f"xen-{version}").glob("*.yml"))
    assert files, f"no transcripts for {version}: run make testbed-capture"
    build = tb.ALL_BUILDS[version]
    expected = {"version": build.version, "debian_version": build.debian_version,
                "build_id": build.build_id}
    if build.xen_version != build.version:  # 4.20.4 calls itself 4.20.5-pre
        expected["xen_version"] = build.xen_version
    for path in files:
        data = yaml.safe_load(path.read_text())
        assert data["build"] == expected, path
        assert data["steps"], path
        for step in data["steps"]:
            assert isinstance(step["argv"], list) and {"rc", "stdout", "stderr"} <= set(step)


@pytest.fixture(scope="session")
def layout():
    layout = tb.Layout()
    missing = [str(p) for p in (layout.payloads(b) for b in tb.BUILDS.values())
               if not (p / ".done").exists()]
    if missing:
        pytest.fail(f"testbed cache incomplete ({', '.join(missing)}): "
                    f"run make testbed-build first")
    return layout


@pytest.mark.parametrize("version", sorted(tb.BUILDS))
def test_payloads_fit_their_build(layout, version, tmp_path):
    build = tb.BUILDS[version]
    directory = layout.payloads(build)
    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["build_id"] == build.build_id
    for name in ("xen_hello_world", "xen_bye_world", "xen_replace_world", "xen_nop",
                 "xen_expectations", "xen_expectations_fail", "xen_action_hooks"):
        payload = directory / f"{name}.livepatch"
        assert tb.gnu_build_id_of_section(payload, ".livepatch.xen_depends", tmp_path) \
            == build.build_id, payload


def test_host_up_and_down_leaves_nothing(layout, tmp_path):
    run_dir = tmp_path / "run"
    assert hosts.up(run_dir, ["pytesthost=4.17.7"], timeout=240) == 0
    try:
        [host] = hosts.read_state(run_dir)
        assert {"name", "address", "port", "user", "identity_file", "xen_version",
                "build_id"} <= set(host)
        assert (host["address"], host["user"]) == ("127.0.0.1", "root")
        info = tb.xl_info(host["port"], Path(host["identity_file"]))
        assert info["build_id"] == tb.BUILDS["4.17.7"].build_id
        assert info["xen_extra"] == ".7"
        assert "shadow" not in info["virt_caps"].split()  # Debian's 4.17.7 has no shadow paging
    finally:
        hosts.down(run_dir)
    assert not run_dir.exists()
    assert not hosts.pid_alive(host["pid"])
    assert not tb.port_in_use(host["port"])


def test_preflight_refuses_loudly_without_root_unless_skipped():
    script = HERE / "preflight.py"
    env = dict(os.environ, NOREBOOT_XEN_SKIP_TESTBED="1")
    skipped = subprocess.run([sys.executable, str(script)], env=env, capture_output=True,
                             text=True, check=False)
    assert skipped.returncode == 3 and "SKIPPED" in skipped.stdout
    env.pop("NOREBOOT_XEN_SKIP_TESTBED")
    nobody = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                             sys.executable, str(script)], env=env, capture_output=True,
                            text=True, check=False)
    assert nobody.returncode == 1 and "not running as root" in nobody.stderr


def test_host_that_does_not_come_up_is_reported_and_cleaned(layout, tmp_path, monkeypatch):
    """A clone whose saved state is cut short: QEMU cannot resume it. `up` fails with
    the serial log and QEMU's own words, and leaves no process or file behind."""
    build = tb.BUILDS["4.17.7"]
    cache = tmp_path / "cache"
    for name in ("xen", "dom0", "payloads"):
        (cache / name).parent.mkdir(parents=True, exist_ok=True)
        (cache / name).symlink_to(layout.root / name)
    broken = tb.Layout(cache)
    golden = broken.golden(build)
    golden.mkdir(parents=True)
    for name in (".done", "disk.qcow2"):
        (golden / name).symlink_to(layout.golden(build) / name)
    with open(layout.golden_state(build), "rb") as state:
        broken.golden_state(build).write_bytes(state.read(20_000_000))
    monkeypatch.setenv("NOREBOOT_XEN_TESTBED_CACHE", str(cache))
    run_dir = tmp_path / "run"
    with pytest.raises(tb.TestbedError) as failure:
        hosts.up(run_dir, ["broken=4.17.7"], timeout=60)
    message = str(failure.value)
    assert "host broken (4.17.7) did not come up" in message
    assert "serial log tail" in message and "load of migration failed" in message
    assert not run_dir.exists()
    leftover = subprocess.run(["pgrep", "-f", str(run_dir)], capture_output=True, text=True, check=False)
    assert leftover.stdout == ""


# ------------------------------------------------------------------ the 4.20 generation
# (no cache or VM needed: these hold the recipe and the layout, not the built testbed)

def test_generation_420_is_opt_in_and_leaves_the_417_cache_keys_alone(tmp_path):
    assert set(tb.BUILDS) == {"4.17.5", "4.17.7"}  # what build_testbed.py makes by default
    assert tb.image_key() == "bookworm-005939320b65"  # the 4.17 dom0 of existing caches
    layout = tb.Layout(tmp_path)
    old, new = tb.ALL_BUILDS["4.17.5"], tb.ALL_BUILDS["4.20.4"]
    assert layout.xen_elf(old) == tmp_path / "xen" / old.debian_version / "xen-4.17-amd64"
    assert layout.xen_syms(new) == tmp_path / "xen" / new.debian_version / "xen-syms-4.20-amd64"
    assert layout.payloads(new) == tmp_path / "payloads" / "4.20.4"
    assert layout.golden(new).name == f"{new.debian_version}-{tb.image_key('trixie')}"
    assert layout.ssh_key("trixie").parent != layout.ssh_key().parent
    packages = tb.dom0_packages("trixie")
    assert "xen-utils-4.20" in packages and "xen-utils-4.17" not in packages
    assert len(packages) == len(tb.DOM0_PACKAGES)


def test_host_spec_takes_either_generation():
    assert hosts.parse_host_spec("c=4.20.4")[1].suite == "trixie"
    assert hosts.parse_host_spec("a=4.17.5")[1].suite == "bookworm"
    with pytest.raises(tb.TestbedError, match="4.17.5, 4.17.7, 4.20.4"):
        hosts.parse_host_spec("c=4.20.9")


def test_trixie_is_read_through_a_private_apt_configuration(tmp_path):
    layout = tb.Layout(tmp_path)
    assert tb.apt_options(layout, "bookworm") == []
    options = tb.apt_options(layout, "trixie")
    values = options[1::2]
    assert options[::2] == ["-o"] * 4
    assert "Dir::Etc::sourceparts=/nonexistent" in values
    assert all(str(tmp_path) in v for v in values if not v.endswith("/nonexistent"))


def test_420_gets_no_payloads_and_no_source_step(tmp_path):
    import build_testbed

    layout = tb.Layout(tmp_path)
    assert set(tb.PAYLOAD_SOURCES) == {"4.17"}  # Debian's archive serves no 4.20 source
    steps = build_testbed.all_step_dirs(layout, tb.BUILDS_420)
    assert layout.payloads(tb.ALL_BUILDS["4.20.4"]) not in steps
    assert not [step for step in steps if step.parent == tmp_path / "source"]
    assert layout.payloads(tb.ALL_BUILDS["4.17.5"]) in build_testbed.all_step_dirs(layout)


def test_capture_knows_420s_scenarios_but_refuses_a_build_without_payloads():
    names_417 = [name for name, _d, _s in capture.scenarios("4.17")]
    names_420 = [name for name, _d, _s in capture.scenarios("4.20")]
    assert "force" not in names_417 and {"force", "force-no-xen-buildid"} <= set(names_420)
    assert names_417[-1] == names_420[-1] == "xl-dmesg-after"
    layout = tb.Layout(Path("/c"))
    assert capture.local_payloads(layout, "4.17.7") == Path("/c/payloads/4.17.7")
    with pytest.raises(tb.TestbedError, match="4.20.4: cannot be captured: the testbed has payloads for 4.17.5, 4.17.7"):
        capture.capturable(["4.17.5", "4.20.4"])
