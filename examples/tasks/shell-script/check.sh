[ -x count_lines.sh ] || { echo "count_lines.sh is missing or not executable"; exit 1; }
out=$(./count_lines.sh logs) || { echo "exit status $? on logs"; exit 1; }
[ "$(echo $out)" = "3" ] || { echo "logs: expected 3, got: $out"; exit 1; }
tmp=$(mktemp -d) && trap 'rm -rf "$tmp"' EXIT
printf 'a\nb\nc\nd\n' > "$tmp/x.txt"; printf 'e\n' > "$tmp/with space.txt"; printf 'z\n' > "$tmp/y.md"
out=$(./count_lines.sh "$tmp")
[ "$(echo $out)" = "5" ] || { echo "expected 5, got: $out"; exit 1; }
./count_lines.sh >/dev/null 2>"$tmp/err"; code=$?
[ "$code" = 2 ] || { echo "without an argument: exit $code, expected 2"; exit 1; }
[ -s "$tmp/err" ] || { echo "without an argument: no usage message on stderr"; exit 1; }
echo ok
