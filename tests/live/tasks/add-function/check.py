from text_utils import is_palindrome, shout
assert is_palindrome("level") is True
assert is_palindrome("abc") is False
assert shout("a") == "A"
