# the tests must pass, and must be the tests we started with
echo "bc5fde93125c7bbdfea82b006b60fc9dc8b616241feb45478749f7da5b648c69  tests/test_stats.py" | sha256sum -c --quiet || { echo "tests/test_stats.py was changed"; exit 1; }
"${PYTHON:-python3}" -m pytest -q -p no:cacheprovider tests
