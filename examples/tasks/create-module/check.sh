[ -f mathx/primes.py ] || { echo "mathx/primes.py is missing"; exit 1; }
"${PYTHON:-python3}" - <<'PY'
from mathx.primes import is_prime, primes_below

def reference(limit):
    sieve = [True] * max(limit, 2)
    sieve[0] = sieve[1] = False
    for i in range(2, int(limit ** 0.5) + 1):
        if sieve[i]:
            sieve[i * i::i] = [False] * len(sieve[i * i::i])
    return [i for i in range(limit) if sieve[i]]

expected = reference(2000)
assert [n for n in range(-5, 2000) if is_prime(n)] == expected
assert primes_below(2000) == expected
assert primes_below(2) == [] and primes_below(3) == [2]
assert is_prime(7919) and not is_prime(7917)
print("ok")
PY
