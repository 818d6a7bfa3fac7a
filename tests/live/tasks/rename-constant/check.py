import pathlib

for name in ("limits.py", "store.py"):
    assert "MAX_SIZE" not in pathlib.Path(name).read_text(), f"MAX_SIZE still in {name}"
from limits import MAX_ITEMS
from store import fits
assert MAX_ITEMS == 10 and fits([1]) and not fits(list(range(11)))
