from greet import greet
assert greet("Ann") == "Hello, Ann!", greet("Ann")
