set -e
py="${PYTHON:-python3}"
out=$("$py" greet.py Ann)
[ "$out" = "Hello, Ann!" ] || { echo "plain greeting changed: $out"; exit 1; }
out=$("$py" greet.py Ann --shout)
[ "$out" = "HELLO, ANN!" ] || { echo "--shout gave: $out"; exit 1; }
out=$("$py" greet.py --shout Bob)
[ "$out" = "HELLO, BOB!" ] || { echo "--shout before the name gave: $out"; exit 1; }
"$py" greet.py --help | grep -q -- "--shout" || { echo "--help does not list --shout"; exit 1; }
echo ok
