import configparser

cp = configparser.ConfigParser()
cp.read("settings.ini")
assert cp["server"]["timeout"] == "60", dict(cp["server"])
assert cp["server"]["host"] == "0.0.0.0" and cp["log"]["level"] == "info"
