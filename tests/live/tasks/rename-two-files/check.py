import pathlib
import subprocess
import sys

for name in ("shop.py", "app.py"):
    assert "calc_total" not in pathlib.Path(name).read_text(), f"calc_total still in {name}"
from shop import compute_total
assert compute_total([2, 3]) == 5
out = subprocess.run([sys.executable, "app.py"], capture_output=True, text=True)
assert out.returncode == 0 and out.stdout.strip() == "6", out
