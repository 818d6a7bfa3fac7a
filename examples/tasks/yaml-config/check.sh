"${PYTHON:-python3}" - <<'PY'
import yaml
cfg = yaml.safe_load(open("config/app.yaml"))
assert cfg["server"]["port"] == 8080, cfg["server"]
assert cfg["server"]["debug"] is False, cfg["server"]
assert cfg["server"]["host"] == "0.0.0.0" and cfg["server"]["workers"] == 4, cfg["server"]
assert cfg["database"] == {"url": "postgres://app@db:5432/app", "pool_size": 10}, cfg["database"]
assert cfg["features"] == ["search", "export"], cfg["features"]
assert set(cfg) == {"server", "database", "features"}, sorted(cfg)
print("ok")
PY
