#!/usr/bin/env bash
# load.sh: the end-to-end load run. Serves the demo (examples/demo) on each of
# its stores, equivalent servers built on alexedwards/scs and gorilla/sessions
# (cmd/scsdemo, cmd/gorillademo) and a bare net/http server as the ceiling
# (cmd/bare), all on loopback, and drives each with wrk:
#
#   read           GET /whoami with the cookie of a session made first
#   modify         GET /       with that cookie (the demo increments through
#                  Update): every connection changes the one session
#   modify-spread  GET /       over 64 sessions made first, in turn
#   new            GET /       without a cookie: a new session per request
#
# and prints requests per second with the ratios to the bare server and to
# the peers, as Markdown. Valkey/Redis comes from scripts/servers.sh (which
# this script runs itself under when VALKEY_ADDR is unset); wrk is installed
# from Debian when missing.
#
# Environment: DURATION (wrk -d, default 5s), THREADS (2), CONNECTIONS (32),
# ROUNDS (2: every server and scenario once per round, medians reported),
# OUT (a file that receives the raw figures, default results/load.txt).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)

if [[ -z ${VALKEY_ADDR:-} ]]; then
	exec "$root/scripts/servers.sh" run "$here/load.sh" "$@"
fi

duration=${DURATION:-5s}
threads=${THREADS:-2}
conns=${CONNECTIONS:-32}
rounds=${ROUNDS:-2}
out=${OUT:-$here/results/load.txt}

say() { printf 'load.sh: %s\n' "$*" >&2; }

if ! command -v wrk >/dev/null; then
	sudo=()
	[[ $(id -u) -eq 0 ]] || sudo=(sudo)
	say "installing wrk with apt-get"
	export DEBIAN_FRONTEND=noninteractive
	"${sudo[@]}" apt-get install -y -q wrk >&2 || {
		"${sudo[@]}" apt-get update -q >&2
		"${sudo[@]}" apt-get install -y -q wrk >&2
	}
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/load.XXXXXX")
server=
cleanup() {
	if [[ -n $server ]]; then
		kill "$server" 2>/dev/null || true
		wait "$server" 2>/dev/null || true
	fi
	rm -rf -- "$tmp"
}
trap cleanup EXIT

say "building"
# The demo is a module of its own: build it in its directory, which works
# with the root's go.work and without it (make bench sets GOWORK=off).
(cd "$root/examples/demo" && go build -o "$tmp/demo" .)
(cd "$here" && go build -o "$tmp/scsdemo" ./cmd/scsdemo && go build -o "$tmp/gorillademo" ./cmd/gorillademo && go build -o "$tmp/bare" ./cmd/bare)

SESSION_KEYS=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
export SESSION_KEYS

# name|command (the address is appended as -addr HOST:PORT)
servers=(
	"bare|$tmp/bare"
	"typedsession-memory|$tmp/demo -store memory -insecure"
	"typedsession-cookie|$tmp/demo -store cookie -insecure"
	"typedsession-valkey|$tmp/demo -store valkey -valkey $VALKEY_ADDR -insecure"
	"typedsession-valkey-cached|$tmp/demo -store valkey -valkey $VALKEY_ADDR -valkey-cache 1m -insecure"
	"scs-memory|$tmp/scsdemo -store memory"
	"scs-redis|$tmp/scsdemo -store redis -redis $VALKEY_ADDR"
	"gorilla-cookie|$tmp/gorillademo"
)
port=${LOAD_PORT:-$((${SERVERS_BASE_PORT:-17379} + 150))}
addr=

# in_use reports whether something accepts connections on the loopback port.
in_use() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# start CMD...: starts a server on the first free loopback port from $port
# up and waits until it answers; sets addr.
start() {
	local tries i
	for ((tries = 0; tries < 50; tries++, port++)); do
		in_use "$port" && continue
		addr=127.0.0.1:$port
		"$@" -addr "$addr" 2>"$tmp/server.log" &
		server=$!
		for ((i = 0; i < 100; i++)); do
			if curl -s -o /dev/null "http://$addr/whoami"; then
				return 0
			fi
			kill -0 "$server" 2>/dev/null || break
			sleep 0.1
		done
		stop
		grep -q 'address already in use' "$tmp/server.log" || break
	done
	cat "$tmp/server.log" >&2
	say "server did not start: $*"
	exit 1
}

stop() {
	kill "$server" 2>/dev/null || true
	wait "$server" 2>/dev/null || true
	server=
}

# spread_script writes a wrk script that sends $spread session cookies in
# turn, each wrk thread starting elsewhere in the list.
spread=64
spread_script() {
	local i c
	{
		echo 'local cookies = {'
		for ((i = 0; i < spread; i++)); do
			c=$(new_cookie)
			echo "  \"$c\","
		done
		echo '}'
		cat <<'LUA'
local threads = 0
function setup(thread)
  thread:set("first", threads * 17)
  threads = threads + 1
end
function init(args)
  n = first
end
function request()
  n = n + 1
  return wrk.format("GET", "/", {["Cookie"] = cookies[n % #cookies + 1]})
end
LUA
	} >"$tmp/spread.lua"
}

# new_cookie prints the name=value of a new session's cookie.
new_cookie() {
	curl -s -o /dev/null -D - "http://$addr/" | tr -d '\r' |
		sed -n 's/^[Ss]et-[Cc]ookie: \([^;]*\).*/\1/p' | head -n 1
}

# bench NAME SCENARIO PATH [COOKIE|-s SCRIPT]: one wrk run; appends a line
# to $out.
bench() {
	local name=$1 scenario=$2 path=$3 cookie=${4:-}
	local args=(-t"$threads" -c"$conns" -d"$duration" --latency)
	if [[ $cookie == -s ]]; then
		args+=(-s "$5")
	elif [[ -n $cookie ]]; then
		args+=(-H "Cookie: $cookie")
	fi
	wrk "${args[@]}" "http://$addr$path" >"$tmp/wrk.txt" 2>&1 || true
	local rps non2xx p50 p99
	rps=$(sed -n 's/^Requests\/sec:[[:space:]]*//p' "$tmp/wrk.txt")
	non2xx=$(sed -n 's/^[[:space:]]*Non-2xx or 3xx responses:[[:space:]]*//p' "$tmp/wrk.txt")
	p50=$(awk '$1 == "50%" {print $2}' "$tmp/wrk.txt")
	p99=$(awk '$1 == "99%" {print $2}' "$tmp/wrk.txt")
	if [[ -z $rps ]]; then
		cat "$tmp/wrk.txt" >&2
		say "wrk gave no figure for $name $scenario"
		exit 1
	fi
	printf '%s %s %s %s %s %s\n' "$name" "$scenario" "$rps" "${non2xx:-0}" "${p50:--}" "${p99:--}" | tee -a "$out" >&2
}

mkdir -p "$(dirname "$out")"
: >"$out"
say "wrk -t$threads -c$conns -d$duration, $rounds rounds, on loopback from port $port; figures in $out"
for ((round = 1; round <= rounds; round++)); do
	for entry in "${servers[@]}"; do
		name=${entry%%|*}
		read -r -a cmd <<<"${entry#*|}"
		start "${cmd[@]}"
		# A session made first, its cookie sent by every read and modify.
		cookie=$(new_cookie)
		if [[ -z $cookie && $name != bare ]]; then
			say "$name set no cookie"
			exit 1
		fi
		spread_script
		bench "$name" read /whoami "$cookie"
		bench "$name" modify / "$cookie"
		bench "$name" modify-spread / -s "$tmp/spread.lua"
		bench "$name" new /
		stop
	done
done

(cd "$here" && go run ./cmd/ratios -load "$out")
