# page() must return full pages and a short last page; page_count must not change
"${PYTHON:-python3}" - <<'PY'
from pagination import page, page_count
items = list(range(10))
assert page(items, 0, 3) == [0, 1, 2], page(items, 0, 3)
assert page(items, 2, 3) == [6, 7, 8], page(items, 2, 3)
assert page(items, 3, 3) == [9], page(items, 3, 3)
assert page(items, 4, 3) == [], page(items, 4, 3)
assert page(items, 0, 10) == items
assert page_count(items, 3) == 4 and page_count([], 3) == 0
print("ok")
PY
