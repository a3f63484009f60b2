#!/usr/bin/env bash
# servers.sh run CMD [ARG...]
#
# Starts throwaway Valkey-protocol servers for the tests, runs CMD with their
# addresses in the environment, stops them again and exits with CMD's status:
#
#   VALKEY_ADDR=127.0.0.1:P                        one standalone server
#   VALKEY_CLUSTER_ADDRS=127.0.0.1:P1,...,:P3      a cluster of three masters
#
# The servers listen on loopback only, on free ports from $SERVERS_BASE_PORT
# (default 17379) up, keep nothing on disk (no RDB, no AOF; cluster config
# files go to a temporary directory that is removed afterwards), and are
# stopped by the pids this script started -- on success, failure, Ctrl-C or
# SIGTERM. redis-server and redis-cli are installed with apt-get when missing
# (as root, or through sudo when it is available).
set -euo pipefail

readonly host=127.0.0.1
readonly wait_limit=10 # seconds allowed for each thing we wait for
base_port=${SERVERS_BASE_PORT:-17379}

pids=()
tmp=

say() { printf 'servers.sh: %s\n' "$*" >&2; }
die() {
	say "$*"
	exit 1
}

usage() {
	printf 'usage: %s run CMD [ARG...]\n' "$0" >&2
	exit 2
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [[ -n $child ]] && kill -0 "$child" 2>/dev/null; then
		stop_child TERM
		local j
		for ((j = 0; j < 50; j++)); do
			kill -0 "$child" 2>/dev/null || break
			sleep 0.1
		done
		stop_child KILL
		wait "$child" 2>/dev/null || true
	fi
	local pid
	for pid in "${pids[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		local i
		for ((i = 0; i < 50; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			say "server $pid did not stop on SIGTERM; killing it"
			kill -KILL "$pid" 2>/dev/null || true
		fi
		wait "$pid" 2>/dev/null || true
	done
	if [[ -n $tmp ]]; then
		rm -rf -- "$tmp"
	fi
	exit "$rc"
}

# ensure_tools installs Debian's redis-server (which brings redis-cli) when
# either program is missing.
ensure_tools() {
	if command -v redis-server >/dev/null && command -v redis-cli >/dev/null; then
		return
	fi
	local sudo=()
	if [[ $(id -u) -ne 0 ]]; then
		command -v sudo >/dev/null || die "redis-server is missing and installing it needs root (no sudo here)"
		sudo=(sudo)
	fi
	say "installing redis-server with apt-get"
	# Only the binaries are used. Where the system starts packaged services
	# (no policy-rc.d forbidding it), the package also starts a service of
	# its own on port 6379; that one is the system's, not ours to stop.
	export DEBIAN_FRONTEND=noninteractive
	if ! "${sudo[@]}" apt-get install -y -q redis-server >&2; then
		"${sudo[@]}" apt-get update -q >&2
		"${sudo[@]}" apt-get install -y -q redis-server >&2
	fi
	command -v redis-server >/dev/null && command -v redis-cli >/dev/null ||
		die "redis-server or redis-cli still missing after apt-get install"
}

# in_use reports whether something accepts connections on the loopback port.
in_use() {
	(exec 3<>"/dev/tcp/$host/$1") 2>/dev/null
}

# start_server PORT [EXTRA-ARG...] starts a server on PORT and waits until it
# answers. It succeeds only when the process answering is the one it started;
# when the port turns out to be taken it returns 1 and leaves nothing behind.
start_server() {
	local port=$1
	shift
	local dir="$tmp/$port"
	mkdir -p "$dir"
	redis-server --bind "$host" --port "$port" --protected-mode yes \
		--save '' --appendonly no --daemonize no \
		--dir "$dir" --logfile "$dir/server.log" "$@" </dev/null &
	local pid=$!
	local i
	for ((i = 0; i < wait_limit * 20; i++)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid" 2>/dev/null || true
			return 1 # exited: most likely the port (or bus port) was taken
		fi
		local got
		got=$(redis-cli -h "$host" -p "$port" info server 2>/dev/null | tr -d '\r' | sed -n 's/^process_id://p') || true
		if [[ $got == "$pid" ]]; then
			pids+=("$pid")
			return 0
		fi
		sleep 0.05
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	say "server on port $port did not answer within ${wait_limit}s; its log:"
	tail -n 20 "$dir/server.log" >&2 || true
	return 1
}

# next_port starts a server on the first port from $port up that it can get
# (with its cluster bus port, port+10000, when clustered) and sets started.
started=
port=$base_port
next_port() {
	local tries=0
	while ((tries++ < 200)); do
		local p=$port
		port=$((port + 1))
		if in_use "$p" || { [[ $* == *cluster-enabled* ]] && in_use $((p + 10000)); }; then
			continue
		fi
		if start_server "$p" "$@"; then
			started=$p
			return 0
		fi
	done
	die "no free loopback port found from $base_port up"
}

wait_cluster_ok() {
	local deadline=$((SECONDS + wait_limit))
	local p
	for p in "$@"; do
		until redis-cli -h "$host" -p "$p" cluster info 2>/dev/null | tr -d '\r' | grep -qx 'cluster_state:ok'; do
			((SECONDS < deadline)) || die "cluster node on port $p not ok within ${wait_limit}s"
			sleep 0.1
		done
	done
}

main() {
	[[ ${1:-} == run && $# -ge 2 ]] || usage
	shift

	ensure_tools
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/servers.XXXXXX")

	next_port
	local standalone=$started

	local cluster=() i
	for ((i = 0; i < 3; i++)); do
		next_port --cluster-enabled yes --cluster-config-file nodes.conf \
			--cluster-node-timeout 5000
		cluster+=("$started")
	done
	local nodes=() p
	for p in "${cluster[@]}"; do
		nodes+=("$host:$p")
	done
	redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes \
		>"$tmp/cluster-create.log" 2>&1 || {
		cat "$tmp/cluster-create.log" >&2
		die "redis-cli --cluster create failed"
	}
	wait_cluster_ok "${cluster[@]}"

	export VALKEY_ADDR="$host:$standalone"
	VALKEY_CLUSTER_ADDRS=$(
		IFS=,
		echo "${nodes[*]}"
	)
	export VALKEY_CLUSTER_ADDRS
	say "standalone $VALKEY_ADDR; cluster $VALKEY_CLUSTER_ADDRS (pids ${pids[*]})"

	run "$@"
}

# run runs CMD in a process group of its own (when setsid exists) and waits for
# it. SIGINT and SIGTERM sent to this script are passed on to that whole group,
# so `go test` and the binaries it starts stop too, and the servers are then
# stopped by the EXIT trap. Bash would defer a trap until a foreground command
# ends, so CMD runs in the background and the script waits on it.
child=
signalled=
run() {
	local launch=()
	if command -v setsid >/dev/null; then
		launch=(setsid)
	fi
	# A background command in a script starts with SIGINT and SIGQUIT
	# ignored; reset them so CMD reacts to Ctrl-C as it would in a shell.
	(
		trap - INT QUIT
		exec "${launch[@]}" "$@"
	) <&0 &
	child=$!
	trap 'forward INT 130' INT
	trap 'forward TERM 143' TERM
	local rc=0
	while :; do
		rc=0
		wait "$child" || rc=$?
		kill -0 "$child" 2>/dev/null || break
	done
	child=
	if [[ -n $signalled ]]; then
		exit "$signalled"
	fi
	exit "$rc"
}

forward() {
	signalled=$2
	stop_child "$1"
}

# stop_child sends a signal to CMD (its whole group when it has one).
stop_child() {
	[[ -n $child ]] || return 0
	kill -"$1" -- "-$child" 2>/dev/null || kill -"$1" "$child" 2>/dev/null || true
}

main "$@"
