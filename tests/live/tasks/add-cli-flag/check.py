import subprocess
import sys


def run(*args):
    out = subprocess.run([sys.executable, "hello.py", *args], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-500:]
    return out.stdout.strip()


assert run("--name", "bob", "--shout") == "HELLO, BOB!", run("--name", "bob", "--shout")
assert run("--name", "bob") == "Hello, bob!"
