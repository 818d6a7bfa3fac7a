if grep -rn "slugfy" --include=*.py .; then echo "the old name is still used"; exit 1; fi
"${PYTHON:-python3}" - <<'PY'
import blog, textutil
assert textutil.slugify("Hello, World!") == "hello-world"
assert not hasattr(textutil, "slugfy")
assert blog.post_url("Ten Tips for Git") == "/posts/ten-tips-for-git"
assert blog.tag_urls(["Python 3", "CLI"]) == ["/tags/python-3", "/tags/cli"]
print("ok")
PY
