"${PYTHON:-python3}" - <<'PY'
import json, os, tempfile
import config_loader as c

s = c.load_settings("does-not-exist.json")
assert s == {"theme": "light", "autosave": True, "recent": []}, s
s["theme"] = "dark"
assert c.DEFAULTS["theme"] == "light", "the defaults were handed out, not a copy"
with tempfile.TemporaryDirectory() as d:
    p = os.path.join(d, "s.json")
    with open(p, "w") as fh:
        json.dump({"theme": "dark"}, fh)
    assert c.load_settings(p) == {"theme": "dark", "autosave": True, "recent": []}
print("ok")
PY
