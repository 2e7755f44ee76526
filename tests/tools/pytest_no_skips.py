"""Run pytest and fail when any test was skipped or none ran.

``make test`` counts only tests that ran: a skipped test (not root, no testbed, an opt-in
left off) is a test that proved nothing, so it fails the step and is named. Set
NOREBOOT_XEN_ALLOW_SKIPS=1 to accept skips knowingly (they are still listed).

Usage: python tests/tools/pytest_no_skips.py [pytest arguments...]
"""
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET


def main(argv):
    with tempfile.TemporaryDirectory(prefix='noreboot-pytest-') as tmp:
        report = os.path.join(tmp, 'junit.xml')
        rc = subprocess.call([sys.executable, '-m', 'pytest', '-p', 'no:cacheprovider', '-rfEs',
                              '--junitxml', report] + argv)
        if not os.path.exists(report):
            return rc or 1
        suites = ET.parse(report).getroot()
        cases = list(suites.iter('testcase'))
        skipped = [c for c in cases if c.find('skipped') is not None]
        failed = [c for c in cases if c.find('failure') is not None or c.find('error') is not None]
    if rc != 0:
        # Last lines of the output, so that a log shown by its tail (CI) still names what failed.
        for case in failed:
            problem = case.find('failure') if case.find('failure') is not None else case.find('error')
            message = (problem.get('message') or '')[:300].replace('\n', ' ')
            print('pytest_no_skips: FAILED %s::%s: %s' % (case.get('classname'), case.get('name'), message),
                  file=sys.stderr)
        return rc
    if not cases:
        print('pytest_no_skips: no test ran', file=sys.stderr)
        return 1
    if skipped:
        for case in skipped:
            reason = case.find('skipped').get('message', '')
            print('SKIPPED %s::%s: %s' % (case.get('classname'), case.get('name'), reason), file=sys.stderr)
        if os.environ.get('NOREBOOT_XEN_ALLOW_SKIPS') != '1':
            print('pytest_no_skips: %d test(s) skipped; a skipped test proves nothing. '
                  'Fix the cause above, or set NOREBOOT_XEN_ALLOW_SKIPS=1 to accept it knowingly.'
                  % len(skipped), file=sys.stderr)
            return 1
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
