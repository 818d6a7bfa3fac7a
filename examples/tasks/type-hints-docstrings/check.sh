"${PYTHON:-python3}" - <<'PY'
import inspect, math, typing
import geometry

public = [f for n, f in inspect.getmembers(geometry, inspect.isfunction)
          if not n.startswith("_") and f.__module__ == "geometry"]
assert sorted(f.__name__ for f in public) == ["circle_area", "distance", "rectangle_area"], public
for f in public:
    doc = inspect.getdoc(f)
    assert doc and doc.strip(), f"{f.__name__} has no docstring"
    hints = typing.get_type_hints(f)
    params = list(inspect.signature(f).parameters)
    for p in params:
        assert hints.get(p) is float, f"{f.__name__}({p}) is not annotated float: {hints.get(p)}"
    assert hints.get("return") is float, f"{f.__name__} has no float return annotation"
assert math.isclose(geometry.circle_area(2.0), math.pi * 4)
assert geometry.rectangle_area(2.5, 4.0) == 10.0
assert geometry.distance(0.0, 0.0, 3.0, 4.0) == 5.0
print("ok")
PY
