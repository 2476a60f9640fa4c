# Sourced by demo.sh and bench_lambda.sh: starts moto_server on a free loopback port, waits until
# it answers, stops it on exit, and sets $endpoint. $PY is the venv's python; $1 the log file.
port=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
.venv/bin/moto_server -H 127.0.0.1 -p "$port" >"$1" 2>&1 &
moto_pid=$!
trap 'kill $moto_pid 2>/dev/null || true' EXIT
endpoint=http://127.0.0.1:$port
for _ in $(seq 100); do
  $PY -c "import urllib.request; urllib.request.urlopen('$endpoint/moto-api/')" 2>/dev/null && break
  sleep 0.1
done
