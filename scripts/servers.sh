#!/usr/bin/env bash
# servers.sh run CMD [ARG...]
#
# Starts throwaway Valkey-protocol servers and a throwaway PostgreSQL cluster
# for the tests, runs CMD with their addresses in the environment, stops them
# again and exits with CMD's status:
#
#   VALKEY_ADDR=127.0.0.1:P                        one standalone server
#   VALKEY_CLUSTER_ADDRS=127.0.0.1:P1,...,:P3      a cluster of three masters
#   PG_DSN=postgres://postgres@127.0.0.1:P/postgres?sslmode=disable
#   PG_DATA=DIR                                    that cluster's data directory
#
# The servers listen on loopback only, on free ports from $SERVERS_BASE_PORT
# (default 17379) up, keep nothing on disk (no RDB, no AOF; cluster config
# files go to a temporary directory that is removed afterwards), and are
# stopped by the pids this script started -- on success, failure, Ctrl-C or
# SIGTERM. redis-server and redis-cli are installed with apt-get when missing
# (as root, or through sudo when it is available).
#
# PostgreSQL comes from Debian's postgresql package (installed the same way
# when /usr/lib/postgresql/*/bin has no server). Its cluster is made with
# initdb in a temporary directory (trust authentication on loopback, fsync
# off), runs as the user postgres (or nobody) when this script runs as root,
# since postgres refuses to run as root, and is stopped with SIGINT (a fast
# shutdown) by its pid: the one this script started, or the one in the data
# directory's postmaster.pid when a test has restarted the server.
set -euo pipefail

readonly host=127.0.0.1
readonly wait_limit=10 # seconds allowed for each thing we wait for
base_port=${SERVERS_BASE_PORT:-17379}

pids=()
tmp=
pg_pid=  # the PostgreSQL postmaster this script started
pg_tmp=  # its temporary directory, holding the data directory

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
	stop_postgres
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
	if [[ -n $pg_tmp ]]; then
		rm -rf -- "$pg_tmp"
	fi
	exit "$rc"
}

# ensure_tools installs Debian's redis-server (which brings redis-cli) when
# either program is missing, and Debian's postgresql when no server is
# installed.
ensure_tools() {
	if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
		# Only the binaries are used. Where the system starts packaged
		# services (no policy-rc.d forbidding it), the package also starts
		# a service of its own on port 6379; that one is the system's, not
		# ours to stop.
		apt_install redis-server
		command -v redis-server >/dev/null && command -v redis-cli >/dev/null ||
			die "redis-server or redis-cli still missing after apt-get install"
	fi
	pg_bin=$(find_pg_bin)
	if [[ -z $pg_bin ]]; then
		# The same holds for the cluster "main" the package may start on
		# port 5432.
		apt_install postgresql
		pg_bin=$(find_pg_bin)
		[[ -n $pg_bin ]] || die "no PostgreSQL server in /usr/lib/postgresql/*/bin after apt-get install"
	fi
}

# apt_install PACKAGE installs a Debian package, as root or through sudo,
# after an apt-get update if the first try fails.
apt_install() {
	local sudo=()
	if [[ $(id -u) -ne 0 ]]; then
		command -v sudo >/dev/null || die "$1 is missing and installing it needs root (no sudo here)"
		sudo=(sudo)
	fi
	say "installing $1 with apt-get"
	export DEBIAN_FRONTEND=noninteractive
	if ! "${sudo[@]}" apt-get install -y -q "$1" >&2; then
		"${sudo[@]}" apt-get update -q >&2
		"${sudo[@]}" apt-get install -y -q "$1" >&2
	fi
}

# find_pg_bin prints the newest of Debian's PostgreSQL binary directories,
# or nothing when there is none.
pg_bin=
find_pg_bin() {
	local d
	for d in /usr/lib/postgresql/*/bin; do
		if [[ -x $d/postgres && -x $d/initdb && -x $d/pg_isready ]]; then
			printf '%s\n' "$d"
		fi
	done | sort -V | tail -n 1
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

# start_postgres makes a throwaway PostgreSQL cluster, starts it on the first
# free port from $port up and sets PG_DSN and PG_DATA. As root, the cluster
# belongs to and runs as the user postgres (made by Debian's package), or
# nobody when there is no such user.
start_postgres() {
	local as_user=()
	pg_tmp=$(mktemp -d "${TMPDIR:-/tmp}/servers-pg.XXXXXX")
	if [[ $(id -u) -eq 0 ]]; then
		local user=postgres
		id -u "$user" >/dev/null 2>&1 || user=nobody
		command -v setpriv >/dev/null || die "setpriv (util-linux) is needed to run PostgreSQL as $user"
		as_user=(setpriv --reuid="$(id -u "$user")" --regid="$(id -g "$user")" --clear-groups --)
		chown "$(id -u "$user"):$(id -g "$user")" "$pg_tmp"
	fi
	local data="$pg_tmp/data"
	if ! (cd "$pg_tmp" && exec "${as_user[@]}" "$pg_bin/initdb" -D "$data" -U postgres \
		--auth=trust --encoding=UTF8 --locale=C --no-sync --no-instructions) \
		>"$pg_tmp/initdb.log" 2>&1; then
		cat "$pg_tmp/initdb.log" >&2
		die "initdb failed"
	fi
	# Settings that a restart by a test (pg_ctl restart) keeps too.
	printf "include 'servers.conf'\n" >>"$data/postgresql.conf"

	local tries=0
	while ((tries++ < 200)); do
		local p=$port
		port=$((port + 1))
		in_use "$p" && continue
		cat >"$data/servers.conf" <<-EOF
			listen_addresses = '$host'
			port = $p
			unix_socket_directories = '$pg_tmp'
			fsync = off
			synchronous_commit = off
			full_page_writes = off
		EOF
		(cd "$pg_tmp" && exec "${as_user[@]}" "$pg_bin/postgres" -D "$data") \
			</dev/null >>"$pg_tmp/server.log" 2>&1 &
		local pid=$! i
		for ((i = 0; i < wait_limit * 20; i++)); do
			if ! kill -0 "$pid" 2>/dev/null; then
				wait "$pid" 2>/dev/null || true
				continue 2 # exited: most likely the port was taken
			fi
			# Ours only when the postmaster.pid answering is the one we
			# started.
			if [[ $(head -n 1 "$data/postmaster.pid" 2>/dev/null) == "$pid" ]] &&
				"$pg_bin/pg_isready" -q -h "$host" -p "$p" -t 1; then
				pg_pid=$pid
				export PG_DSN="postgres://postgres@$host:$p/postgres?sslmode=disable"
				export PG_DATA="$data"
				return 0
			fi
			sleep 0.05
		done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		say "PostgreSQL on port $p did not answer within ${wait_limit}s; its log:"
		tail -n 20 "$pg_tmp/server.log" >&2 || true
		die "PostgreSQL did not start"
	done
	die "no free loopback port found for PostgreSQL from $base_port up"
}

# stop_postgres stops the postmaster this script started and, when a test
# restarted the server, the one running now (from postmaster.pid), with a
# fast shutdown, then SIGKILL if it is still there after 5 seconds.
stop_postgres() {
	[[ -n $pg_tmp ]] || return 0
	local now=
	if [[ -f $pg_tmp/data/postmaster.pid ]]; then
		now=$(head -n 1 "$pg_tmp/data/postmaster.pid")
	fi
	local pid
	for pid in $pg_pid $now; do
		[[ $pid =~ ^[0-9]+$ ]] || continue
		# A pid read from the file is stopped only while it is a postgres.
		[[ $pid == "$pg_pid" || $(cat "/proc/$pid/comm" 2>/dev/null) == postgres ]] || continue
		kill -INT "$pid" 2>/dev/null || continue
		local i
		for ((i = 0; i < 50; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			say "PostgreSQL $pid did not stop on SIGINT; killing it"
			kill -KILL "$pid" 2>/dev/null || true
		fi
	done
	if [[ -n $pg_pid ]]; then
		wait "$pg_pid" 2>/dev/null || true
	fi
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

	start_postgres
	say "PostgreSQL $PG_DSN (pid $pg_pid)"

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
