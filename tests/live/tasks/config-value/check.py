import json
import pathlib

data = json.loads(pathlib.Path("config.json").read_text())
assert data == {"host": "localhost", "port": 9090, "debug": True}, data
