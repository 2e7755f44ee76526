"""tests/tools/pytest_no_skips.py: make test's pytest wrapper fails on skips and names failures last."""
import os
import subprocess
import sys

TOOL = os.path.join(os.path.dirname(__file__), '..', '..', 'tools', 'pytest_no_skips.py')


def run(tmp_path, body):
    (tmp_path / 'test_sample.py').write_text(body)
    env = dict(os.environ)
    env.pop('NOREBOOT_XEN_ALLOW_SKIPS', None)
    return subprocess.run([sys.executable, TOOL, '-q', str(tmp_path)], cwd=str(tmp_path),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, env=env, check=False)


def test_a_failure_is_named_on_the_last_line(tmp_path):
    proc = run(tmp_path, 'def test_passes():\n    pass\n\n\ndef test_breaks():\n    assert 1 == 2, "one is not two"\n')
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith('pytest_no_skips: FAILED test_sample::test_breaks: AssertionError: one is not two'), proc.stderr
    assert 'test_passes' not in proc.stderr


def test_a_skip_fails_the_run_and_is_named(tmp_path):
    proc = run(tmp_path, 'import pytest\n\n\ndef test_skipped():\n    pytest.skip("no testbed")\n')
    assert proc.returncode == 1
    assert 'SKIPPED test_sample::test_skipped: no testbed' in proc.stderr
    assert '1 test(s) skipped' in proc.stderr


def test_passing_tests_pass(tmp_path):
    proc = run(tmp_path, 'def test_passes():\n    pass\n')
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'pytest_no_skips' not in proc.stderr
