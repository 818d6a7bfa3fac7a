import hashlib
import pathlib
import subprocess
import sys

# the tests must pass without the test file being weakened
assert "assert not is_even(7)" in pathlib.Path("test_parity.py").read_text(), "test file was changed"
out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_parity.py"],
                     capture_output=True, text=True)
assert out.returncode == 0, out.stdout[-500:]
