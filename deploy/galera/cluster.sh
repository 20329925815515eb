#!/usr/bin/env bash
# A three-node MariaDB Galera cluster on loopback, from Debian's mariadb-server and galera-4:
# extra mariadbd processes with their own data directories and ports, running as `mysql`,
# SST by rsync. It never touches the machine's own MariaDB (port 3306, /var/lib/mysql).
#
#   cluster.sh start          fresh cluster (a leftover one is removed first); prints the node URLs
#   cluster.sh stop           every node stopped and the data directories removed
#   cluster.sh kill N         SIGKILL node N (1–3)
#   cluster.sh shutdown N     stop node N cleanly
#   cluster.sh restart N      recover node N's position (--wsrep-recover), start it, wait until it
#                             is synced again: it catches up by IST when the donor's gcache allows;
#                             a recovery that fails or overruns its bounds exits non-zero at once
#   cluster.sh ensure         every node running and synced in one three-node primary component:
#                             nodes that are not are restarted (IST), or emptied and rejoined by SST
#                             when that fails; a cluster without a primary component starts afresh
#   cluster.sh status         each node's wsrep_local_state_comment and cluster size
#   cluster.sh urls           the SQLAlchemy URLs of the nodes, comma-separated
#
# Node N listens on MySQL port GALERA_MYSQL_PORT+N-1 and Galera port GALERA_GROUP_PORT+10*(N-1);
# its IST receiver is that Galera port + 1 and its rsync SST receiver + 2.
#
# Memory is bounded whatever the environment: mariadbd allocates and zeroes 16 bytes per file
# descriptor its open-files limit allows, which under a container's limit of 2^30 is 16 GiB per
# process, so every node runs with at most NODE_OPEN_FILES; the buffer pool may not grow past its
# size (10.11 reserves 8 TiB of address space for growth otherwise); and --wsrep-recover runs
# within RECOVER_MEMORY of address space and RECOVER_SECONDS.
set -euo pipefail

BASE=${GALERA_DIR:-/tmp/galera}
MYSQL_PORT=${GALERA_MYSQL_PORT:-4306}
GROUP_PORT=${GALERA_GROUP_PORT:-4560}
NODES=3
USER_NAME=inventory
USER_PASSWORD=inventory
PROVIDER=/usr/lib/galera/libgalera_smm.so
NODE_OPEN_FILES=65536
RECOVER_MEMORY=${GALERA_RECOVER_MEMORY:-2G}
RECOVER_SECONDS=30

node_dir() { echo "$BASE/node$1"; }
mysql_port() { echo $((MYSQL_PORT + $1 - 1)); }
group_port() { echo $((GROUP_PORT + 10 * ($1 - 1))); }
client() { mariadb --socket="$(node_dir "$1")/mysqld.sock" --user=root --batch --skip-column-names "${@:2}"; }
status_of() { client "$1" -e "SHOW GLOBAL STATUS LIKE '$2'" 2>/dev/null | cut -f2; }

cluster_address() {
    local addresses=() n
    for n in $(seq 1 $NODES); do addresses+=("127.0.0.1:$(group_port "$n")"); done
    (IFS=,; echo "gcomm://${addresses[*]}")
}

write_config() {
    local n=$1 dir port
    dir=$(node_dir "$n")
    port=$(group_port "$n")
    # Short failure detection so a dead node is evicted in a few seconds; a small gcache is
    # still far larger than what the tests write while a node is down, so rejoins use IST.
    cat >"$dir.cnf" <<EOF
[mysqld]
user=mysql
datadir=$dir
socket=$dir/mysqld.sock
pid-file=$dir/mysqld.pid
log-error=$dir/error.log
port=$(mysql_port "$n")
bind-address=127.0.0.1
skip-name-resolve
character-set-server=utf8mb4
collation-server=utf8mb4_unicode_ci
default-storage-engine=InnoDB
binlog_format=ROW
innodb_autoinc_lock_mode=2
innodb_buffer_pool_size=64M
innodb_buffer_pool_size_max=64M
innodb_log_file_size=32M
innodb_flush_log_at_trx_commit=2
max_connections=300
wsrep_on=ON
wsrep_provider=$PROVIDER
wsrep_cluster_name=inventory_loopback
wsrep_cluster_address=$(cluster_address)
wsrep_node_name=node$n
wsrep_node_address=127.0.0.1:$port
wsrep_sst_method=rsync
wsrep_sst_receive_address=127.0.0.1:$((port + 2))
wsrep_slave_threads=2
wsrep_provider_options="gmcast.listen_addr=tcp://127.0.0.1:$port;ist.recv_addr=127.0.0.1:$((port + 1));gcache.size=128M;evs.keepalive_period=PT0.5S;evs.inactive_check_period=PT0.5S;evs.suspect_timeout=PT3S;evs.inactive_timeout=PT6S;evs.install_timeout=PT6S"
EOF
}

running_pid() {
    local pid
    pid=$(cat "$(node_dir "$1")/mysqld.pid" 2>/dev/null) || return 1  # gone as a node stops
    [ -n "$pid" ] && [[ "$(ps -o stat= -p "$pid" 2>/dev/null)" =~ ^[[:space:]]*[^Z[:space:]] ]] && echo "$pid"
}

# Processes started for node N: mariadbd itself and, during an SST, its rsync helpers.
node_processes() { pgrep -f -- "$(node_dir "$1")([/. ]|$)" || true; }

kill_node() {
    local pids
    pids=$(node_processes "$1")
    [ -n "$pids" ] && kill -KILL $pids 2>/dev/null || true
    for _ in $(seq 1 300); do [ -z "$(node_processes "$1")" ] && return 0; sleep 0.1; done
    echo "node$1: processes still there 30 s after SIGKILL: $(node_processes "$1")" >&2
    return 1
}

wait_synced() {
    local n=$1 seconds=${2:-60} state
    for _ in $(seq 1 $((seconds * 5))); do
        if ! kill -0 "$3" 2>/dev/null; then
            echo "node$n exited; its log:" >&2
            tail -n 30 "$(node_dir "$n")/error.log" >&2
            return 1
        fi
        state=$(status_of "$n" wsrep_local_state || true)
        [ "$state" = 4 ] && [ "$(status_of "$n" wsrep_ready)" = ON ] && return 0
        sleep 0.2
    done
    echo "node$n not synced after ${seconds}s; its log:" >&2
    tail -n 30 "$(node_dir "$n")/error.log" >&2
    return 1
}

open_files() {  # NODE_OPEN_FILES, or less when this shell may not have that many
    local hard
    hard=$(ulimit -Hn)
    if [ "$hard" = unlimited ] || [ "$hard" -gt "$NODE_OPEN_FILES" ]; then echo "$NODE_OPEN_FILES"; else echo "$hard"; fi
}


launch() {  # launch N [mariadbd options…]: start node N in the background, wait until synced
    local n=$1 pid
    rm -f "$(node_dir "$n")/mysqld.pid"
    prlimit --nofile="$(open_files)" /usr/sbin/mariadbd --defaults-file="$(node_dir "$n").cnf" "${@:2}" \
        >>"$(node_dir "$n")/console.log" 2>&1 </dev/null &
    pid=$!
    disown "$pid" 2>/dev/null || true
    wait_synced "$n" 60 "$pid"
}

start() {
    stop_all
    mkdir -p "$BASE"
    chown mysql:mysql "$BASE"
    for n in $(seq 1 $NODES); do
        install -d -o mysql -g mysql "$(node_dir "$n")"
        write_config "$n"
    done
    prlimit --nofile="$(open_files)" mariadb-install-db --defaults-file="$(node_dir 1).cnf" --skip-test-db \
        --auth-root-authentication-method=socket >"$BASE/install.log" 2>&1 \
        || { cat "$BASE/install.log" >&2; exit 1; }
    launch 1 --wsrep-new-cluster
    client 1 -e "CREATE USER IF NOT EXISTS '$USER_NAME'@'127.0.0.1' IDENTIFIED BY '$USER_PASSWORD';
                 GRANT ALL ON *.* TO '$USER_NAME'@'127.0.0.1';
                 CREATE USER IF NOT EXISTS 'haproxy_check'@'127.0.0.1';"
    for n in $(seq 2 $NODES); do launch "$n"; done  # an empty data directory joins by rsync SST
    urls
}

stop_all() {
    local n pid
    for n in $(seq 1 $NODES); do
        pid=$(running_pid "$n" || true)
        [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || true
    done
    for n in $(seq 1 $NODES); do
        for _ in $(seq 1 100); do [ -z "$(running_pid "$n" || true)" ] && break; sleep 0.1; done
        kill_node "$n"
        rm -rf "$(node_dir "$n")" "$(node_dir "$n").cnf"
    done
}

shutdown_node() {
    local pid
    pid=$(running_pid "$1" || true)
    [ -z "$pid" ] && return 0
    kill -TERM "$pid"
    for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    kill_node "$1"
}

recovered_position() { sed -n 's/.*WSREP: Recovered position: *//p' "$1/recover.log" 2>/dev/null | tail -n 1; }

recover() {  # the position node N's InnoDB reached, printed; non-zero when it cannot be had
    local n=$1 dir pid status=0 position
    dir=$(node_dir "$n")
    rm -f "$dir/recover.log"
    # The position is printed once InnoDB has recovered; the shutdown after it would roll back
    # what the crash left unfinished (innodb_fast_shutdown=3 leaves that to the next start),
    # and a process still busy once the position is out is stopped.
    prlimit --as="$(numfmt --from=iec "$RECOVER_MEMORY")" --nofile="$(open_files)" /usr/sbin/mariadbd \
        --defaults-file="$dir.cnf" --wsrep-recover --innodb-fast-shutdown=3 --log-error="$dir/recover.log" \
        >/dev/null 2>&1 </dev/null &
    pid=$!
    for _ in $(seq 1 $((RECOVER_SECONDS * 10))); do
        [ -n "$(recovered_position "$dir")" ] && break
        kill -0 "$pid" 2>/dev/null || break  # exited
        sleep 0.1
    done
    if [ -n "$(recovered_position "$dir")" ]; then  # a moment to exit by itself
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid"
        echo "node$n: --wsrep-recover stopped, still running after ${RECOVER_SECONDS}s or its position" >&2
    fi
    wait "$pid" || status=$?
    position=$(recovered_position "$dir")
    if [ -z "$position" ]; then
        case $status in
            137) echo "node$n: --wsrep-recover gave no position within ${RECOVER_SECONDS}s" >&2 ;;
            *) echo "node$n: --wsrep-recover failed (exit $status, within $RECOVER_MEMORY of memory)" >&2 ;;
        esac
        tail -n 15 "$dir/recover.log" >&2
        return 1
    fi
    echo "$position"
}

restart() {
    local n=$1 position
    kill_node "$n" || return 1  # nothing of the old process may hold the data directory
    # The position the node's InnoDB reached: with it the node asks the cluster for the
    # missing write sets only (IST), where an unknown position (-1 after a crash) means SST.
    position=$(recover "$n") || return 1
    echo "node$n recovered position $position" >&2
    launch "$n" --wsrep-start-position="$position"
}

synced() {  # node N runs, is synced and ready, in a primary component of all the nodes
    [ -n "$(running_pid "$1" || true)" ] && [ "$(status_of "$1" wsrep_local_state)" = 4 ] \
        && [ "$(status_of "$1" wsrep_ready)" = ON ] && [ "$(status_of "$1" wsrep_cluster_status)" = Primary ] \
        && [ "$(status_of "$1" wsrep_cluster_size)" = "$NODES" ]
}

rejoin() {  # node N back into the primary component: by IST, or by SST from an empty directory
    local n=$1
    restart "$n" && return 0
    echo "node$n: restart failed; emptying its data directory to rejoin by state transfer" >&2
    kill_node "$n" || return 1
    find "$(node_dir "$n")" -mindepth 1 -delete
    launch "$n"
}

ensure() {
    local n primary=() others=()
    for n in $(seq 1 $NODES); do
        if [ -n "$(running_pid "$n" || true)" ] && [ "$(status_of "$n" wsrep_cluster_status)" = Primary ] \
                && [ "$(status_of "$n" wsrep_local_state)" = 4 ]; then
            primary+=("$n")
        else
            others+=("$n")
        fi
    done
    if [ ${#primary[@]} = 0 ]; then
        echo "no node in a primary component: starting the cluster afresh" >&2
        start >/dev/null
        return
    fi
    for n in "${others[@]}"; do
        echo "node$n is not synced in the primary component: rejoining it" >&2
        rejoin "$n"
    done
    for n in $(seq 1 $NODES); do
        for _ in $(seq 1 100); do synced "$n" && break; sleep 0.2; done
        synced "$n" || { echo "node$n did not settle: $(status)" >&2; return 1; }
    done
}

status() {
    local n
    for n in $(seq 1 $NODES); do
        if [ -n "$(running_pid "$n" || true)" ]; then
            echo "node$n port $(mysql_port "$n"): $(status_of "$n" wsrep_local_state_comment)," \
                 "cluster size $(status_of "$n" wsrep_cluster_size), $(status_of "$n" wsrep_cluster_status)"
        else
            echo "node$n port $(mysql_port "$n"): down"
        fi
    done
}

urls() {
    local n out=()
    for n in $(seq 1 $NODES); do
        out+=("mysql+mysqldb://$USER_NAME:$USER_PASSWORD@127.0.0.1:$(mysql_port "$n")/?charset=utf8mb4")
    done
    (IFS=,; echo "${out[*]}")
}

node_arg() {
    [[ "${1:-}" =~ ^[1-3]$ ]] || { echo "which node? 1, 2 or 3" >&2; exit 2; }
    echo "$1"
}

case "${1:-}" in
    start) start ;;
    stop) stop_all ;;
    kill) kill_node "$(node_arg "${2:-}")" ;;
    shutdown) shutdown_node "$(node_arg "${2:-}")" ;;
    restart) restart "$(node_arg "${2:-}")" ;;
    ensure) ensure ;;
    status) status ;;
    urls) urls ;;
    *) sed -n '2,/^set -euo/p' "$0" | sed '$d' >&2; exit 2 ;;
esac
