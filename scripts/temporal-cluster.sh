#!/usr/bin/env bash
# A production-style Temporal without Docker: two server processes (all four services in each, one
# membership ring) on PostgreSQL persistence and SQL visibility, with mTLS on the frontend.
#
#   scripts/temporal-cluster.sh build|certs|start|stop|status|env|start-server N|stop-server N|pid N
#
# start  builds the pinned server and sql tool (skipped when present), starts Debian's PostgreSQL
#        on its own port and data dir (as the postgres user when run as root), sets up both schemas,
#        generates a throwaway CA with server, client and system-worker certificates, starts both
#        server processes, registers the namespace and dispatch's search attributes, and writes a
#        temporal.toml with a `cluster` profile for dispatch and the temporal CLI.
# build  only builds the server and sql tool.
# certs  only writes the throwaway CA and certificates (for docker-compose.temporal.mtls.yml too).
# stop   stops both servers and PostgreSQL (the state directory stays; `start` reuses it).
# env    prints the environment (TEMPORAL_CONFIG_FILE, TEMPORAL_PROFILE) to eval.
#
# Settings (environment): DISPATCH_CLUSTER_DIR (default /tmp/dispatch-temporal-cluster),
# DISPATCH_CLUSTER_PORT (first frontend port, default 17233; the second server uses +100),
# DISPATCH_CLUSTER_PG_PORT (default 15432), DISPATCH_TOOLS_DIR (where the built binaries go,
# default ~/.cache/dispatch/temporal-server-1.29.1).
set -euo pipefail

SERVER_VERSION=v1.29.1
DIR=${DISPATCH_CLUSTER_DIR:-/tmp/dispatch-temporal-cluster}
BASE=${DISPATCH_CLUSTER_PORT:-17233}
PGPORT=${DISPATCH_CLUSTER_PG_PORT:-15432}
TOOLS=${DISPATCH_TOOLS_DIR:-$HOME/.cache/dispatch/temporal-server-${SERVER_VERSION#v}}
NAMESPACE=default
SEARCH_ATTRIBUTES=(TaskProject:Keyword TaskNode:Keyword TaskStatus:Keyword TaskPriority:Int)

log() { printf '[temporal-cluster] %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

if ! [[ $PGPORT =~ ^[0-9]+$ ]] || ((PGPORT < 1024 || PGPORT > 65535)); then
  die "DISPATCH_CLUSTER_PG_PORT must be a port number above 1023, got '$PGPORT'"
fi
# Temporal keeps membership ports in a smallint column: the highest one (BASE + 113) must stay below 32768.
if ! [[ $BASE =~ ^[0-9]+$ ]] || ((BASE < 1024 || BASE + 113 > 32767)); then
  die "DISPATCH_CLUSTER_PORT must be between 1024 and 32654, got '$BASE'"
fi

frontend_port() { echo $((BASE + ($1 - 1) * 100)); }

temporal_cli() {
  local bin
  bin=$(command -v temporal || echo "$HOME/go/bin/temporal")
  "$bin" "$@" --address "127.0.0.1:$(frontend_port 1)" --tls-cert-path "$DIR/certs/client.pem" \
    --tls-key-path "$DIR/certs/client.key" --tls-ca-path "$DIR/certs/ca.pem" --tls-server-name localhost
}

build() {
  mkdir -p "$TOOLS"
  if [[ -x $TOOLS/temporal-server && -x $TOOLS/temporal-sql-tool ]]; then return; fi
  command -v go >/dev/null || die "go is needed to build the Temporal server"
  log "building Temporal server and sql tool $SERVER_VERSION (a few minutes the first time)"
  local tmp
  tmp=$(mktemp -d)
  GOBIN=$tmp go install "go.temporal.io/server/cmd/server@$SERVER_VERSION"
  GOBIN=$tmp go install "go.temporal.io/server/cmd/tools/sql@$SERVER_VERSION"
  mv "$tmp/server" "$TOOLS/temporal-server"
  mv "$tmp/sql" "$TOOLS/temporal-sql-tool"
  rmdir "$tmp"
}

schema_dir() {
  local mod
  mod=$(go env GOMODCACHE)/go.temporal.io/server@$SERVER_VERSION
  [[ -d $mod/schema/postgresql/v12 ]] || GOFLAGS=-mod=mod go mod download "go.temporal.io/server@$SERVER_VERSION"
  echo "$mod/schema/postgresql/v12"
}

# The newest installed PostgreSQL's bin directory, or nothing.
newest_pg() {
  local d best=""
  for d in /usr/lib/postgresql/*/bin; do [[ -x $d/initdb ]] && best=$d; done
  echo "$best"
}

pg_bin() {
  local d
  d=$(newest_pg)
  if [[ -z $d ]]; then
    command -v apt-get >/dev/null || die "PostgreSQL is not installed and apt-get is not available"
    log "installing PostgreSQL (Debian package)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    d=$(newest_pg)
    [[ -n $d ]] || die "PostgreSQL install did not provide initdb"
  fi
  echo "$d"
}

as_pg() {
  if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_pg() {
  local bin
  bin=$(pg_bin)
  mkdir -p "$DIR"
  if [[ ! -f $DIR/pg/PG_VERSION ]]; then
    mkdir -p "$DIR/pg" "$DIR/pg-run"
    if [[ $(id -u) == 0 ]]; then
      # The postgres user must reach its data dir: the state dir may be a private mkdtemp.
      chmod a+x "$DIR"
      chown postgres:postgres "$DIR/pg" "$DIR/pg-run"
      runuser -u postgres -- test -x "$DIR/pg" || die "the postgres user cannot reach $DIR: make its parent directories traversable"
    fi
    chmod 700 "$DIR/pg"
    as_pg "$bin/initdb" -D "$DIR/pg" -U postgres --auth=trust -E UTF8 >/dev/null
  fi
  if ! as_pg "$bin/pg_ctl" -D "$DIR/pg" status >/dev/null 2>&1; then
    as_pg "$bin/pg_ctl" -D "$DIR/pg" -l "$DIR/pg-run/postgres.log" -w -t 60 \
      -o "-p $PGPORT -k $DIR/pg-run -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null
  fi
  local psql=("$bin/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -v ON_ERROR_STOP=1 -q)
  if ! "${psql[@]}" -tAc "SELECT 1 FROM pg_roles WHERE rolname='temporal'" | grep -q 1; then
    "${psql[@]}" -c "CREATE USER temporal WITH PASSWORD 'temporal' CREATEDB"
  fi
}

setup_schema() {
  local sd tool=("$TOOLS/temporal-sql-tool" --plugin postgres12 --ep 127.0.0.1 -p "$PGPORT" -u temporal -pw temporal)
  sd=$(schema_dir)
  for db in temporal temporal_visibility; do
    local sub=temporal
    [[ $db == temporal_visibility ]] && sub=visibility
    "${tool[@]}" --db "$db" create-database >/dev/null 2>&1 || true
    # setup-schema -v 0.0 is a no-op on a database that has it; update-schema applies what is missing.
    "${tool[@]}" --db "$db" setup-schema -v 0.0 >/dev/null 2>&1 || true
    "${tool[@]}" --db "$db" update-schema -d "$sd/$sub/versioned" >"$DIR/schema-$db.log" 2>&1 ||
      die "schema update of $db failed; see $DIR/schema-$db.log"
  done
}

certs() {
  local c=$DIR/certs
  [[ -f $c/client.pem ]] && return
  mkdir -p "$c"
  command -v openssl >/dev/null || die "openssl is needed for the throwaway CA"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$c/ca.key" 2>/dev/null
  openssl req -x509 -new -key "$c/ca.key" -sha256 -days 30 -subj "/CN=dispatch throwaway CA" -out "$c/ca.pem" 2>/dev/null
  local name
  for name in server client system-worker; do
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$c/$name.key" 2>/dev/null
    openssl req -new -key "$c/$name.key" -subj "/CN=dispatch-$name" -out "$c/$name.csr" 2>/dev/null
    local ext="extendedKeyUsage=clientAuth"
    [[ $name == server ]] && ext="subjectAltName=DNS:localhost,DNS:temporal,IP:127.0.0.1
extendedKeyUsage=serverAuth,clientAuth"
    printf '%s\n' "$ext" >"$c/$name.ext"
    openssl x509 -req -in "$c/$name.csr" -CA "$c/ca.pem" -CAkey "$c/ca.key" -CAcreateserial -days 30 -sha256 \
      -extfile "$c/$name.ext" -out "$c/$name.pem" 2>/dev/null
    rm -f "$c/$name.csr" "$c/$name.ext"
  done
  chmod 600 "$c"/*.key
}

server_config() {
  local i=$1 f p c=$DIR/certs
  f=$(frontend_port "$i")
  p=$f
  mkdir -p "$DIR/s$i/config"
  cat >"$DIR/s$i/config/development.yaml" <<EOF
log:
  stdout: true
  level: warn
persistence:
  defaultStore: pg-default
  visibilityStore: pg-visibility
  numHistoryShards: 4
  datastores:
    pg-default:
      sql:
        pluginName: postgres12
        databaseName: temporal
        connectAddr: "127.0.0.1:$PGPORT"
        connectProtocol: tcp
        user: temporal
        password: temporal
        maxConns: 20
        maxIdleConns: 20
        maxConnLifetime: 1h
    pg-visibility:
      sql:
        pluginName: postgres12
        databaseName: temporal_visibility
        connectAddr: "127.0.0.1:$PGPORT"
        connectProtocol: tcp
        user: temporal
        password: temporal
        maxConns: 5
        maxIdleConns: 5
        maxConnLifetime: 1h
global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: "127.0.0.1"
  tls:
    frontend:
      server:
        certFile: $c/server.pem
        keyFile: $c/server.key
        requireClientAuth: true
        clientCaFiles: [$c/ca.pem]
      client:
        serverName: localhost
        rootCaFiles: [$c/ca.pem]
    systemWorker:
      certFile: $c/system-worker.pem
      keyFile: $c/system-worker.key
      client:
        serverName: localhost
        rootCaFiles: [$c/ca.pem]
services:
  frontend:
    rpc: { grpcPort: $p, membershipPort: $((p + 10)), bindOnLocalHost: true, httpPort: $((p + 20)) }
  history:
    rpc: { grpcPort: $((p + 1)), membershipPort: $((p + 11)), bindOnLocalHost: true }
  matching:
    rpc: { grpcPort: $((p + 2)), membershipPort: $((p + 12)), bindOnLocalHost: true }
  worker:
    rpc: { grpcPort: $((p + 3)), membershipPort: $((p + 13)), bindOnLocalHost: true }
clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: active
  currentClusterName: active
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: frontend
      rpcAddress: "localhost:$(frontend_port 1)"
dcRedirectionPolicy:
  policy: noop
dynamicConfigClient:
  filepath: $DIR/dynamicconfig.yaml
  pollInterval: 10s
EOF
}

dynamic_config() {
  cat >"$DIR/dynamicconfig.yaml" <<'EOF'
# Search attributes registered a moment ago are usable at once (as on the dev server).
system.forceSearchAttributesCacheRefreshOnRead:
  - value: true
EOF
}

server_running() {
  local pid
  pid=$(cat "$DIR/s$1/pid" 2>/dev/null || true)
  [[ -n $pid && -d /proc/$pid ]] && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$pid/stat" 2>/dev/null
}

start_server() {
  local i=$1
  server_running "$i" && return
  server_config "$i"
  (cd "$DIR/s$i" && exec setsid "$TOOLS/temporal-server" --root "$DIR/s$i" --config config --env development --allow-no-auth start \
    >>"$DIR/s$i/server.log" 2>&1) &
  echo $! >"$DIR/s$i/pid"
}

wait_serving() {
  local until=$((SECONDS + 120))
  until temporal_cli operator cluster health >/dev/null 2>&1; do
    ((SECONDS < until)) || die "Temporal did not answer SERVING in 120 s; see $DIR/s1/server.log"
    sleep 1
  done
}

register() {
  local until=$((SECONDS + 60))
  until temporal_cli operator namespace describe --namespace "$NAMESPACE" >/dev/null 2>&1; do
    temporal_cli operator namespace create --namespace "$NAMESPACE" --retention 72h >/dev/null 2>&1 || true
    ((SECONDS < until)) || die "could not register namespace $NAMESPACE"
    sleep 1
  done
  local have sa
  have=$(temporal_cli operator search-attribute list --namespace "$NAMESPACE" 2>/dev/null || true)
  for sa in "${SEARCH_ATTRIBUTES[@]}"; do
    grep -qw "${sa%%:*}" <<<"$have" && continue
    temporal_cli operator search-attribute create --namespace "$NAMESPACE" --name "${sa%%:*}" --type "${sa##*:}" >/dev/null
  done
}

# profile NAME SERVER: one temporal.toml profile for a server's frontend, with the client certificate
profile() {
  local c=$DIR/certs
  cat <<EOF

[profile.$1]
address = "127.0.0.1:$(frontend_port "$2")"
namespace = "$NAMESPACE"

[profile.$1.tls]
client_cert_path = "$c/client.pem"
client_key_path = "$c/client.key"
server_ca_cert_path = "$c/ca.pem"
server_name = "localhost"
EOF
}

write_profile() {
  {
    echo "# Written by scripts/temporal-cluster.sh: dispatch --profile cluster, temporal --profile cluster."
    profile cluster 1
    profile second 2
  } >"$DIR/temporal.toml"
}

stop_server() {
  local pid
  pid=$(cat "$DIR/s$1/pid" 2>/dev/null || true)
  [[ -n $pid ]] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do server_running "$1" || break; sleep 0.2; done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$DIR/s$1/pid"
}

cmd=${1:-}
case $cmd in
build)
  build
  log "server and sql tool: $TOOLS"
  ;;
certs)
  # Only the throwaway CA and certificates (also for docker-compose.temporal.mtls.yml).
  certs
  log "certificates: $DIR/certs"
  ;;
start)
  build
  start_pg
  setup_schema
  certs
  dynamic_config
  start_server 1
  wait_serving
  start_server 2
  register
  write_profile
  log "up: frontends 127.0.0.1:$(frontend_port 1) and 127.0.0.1:$(frontend_port 2) (mTLS), PostgreSQL 127.0.0.1:$PGPORT"
  log "use: TEMPORAL_CONFIG_FILE=$DIR/temporal.toml dispatch --profile cluster ..."
  ;;
start-server)
  # start-server N: (re)start one server process, e.g. after a test killed it.
  [[ ${2:-} == 1 || ${2:-} == 2 ]] || die "start-server takes 1 or 2"
  start_server "$2"
  ;;
stop-server)
  [[ ${2:-} == 1 || ${2:-} == 2 ]] || die "stop-server takes 1 or 2"
  stop_server "$2"
  ;;
pid)
  [[ ${2:-} == 1 || ${2:-} == 2 ]] || die "pid takes 1 or 2"
  cat "$DIR/s$2/pid"
  ;;
stop)
  stop_server 2
  stop_server 1
  if [[ -f $DIR/pg/PG_VERSION ]]; then
    as_pg "$(pg_bin)/pg_ctl" -D "$DIR/pg" -m fast -w stop >/dev/null 2>&1 || true
  fi
  log "stopped"
  ;;
status)
  for i in 1 2; do
    if server_running "$i"; then echo "server $i: running (pid $(cat "$DIR/s$i/pid"), frontend $(frontend_port "$i"))"; else echo "server $i: stopped"; fi
  done
  if [[ -f $DIR/pg/PG_VERSION ]] && as_pg "$(pg_bin)/pg_ctl" -D "$DIR/pg" status >/dev/null 2>&1; then echo "postgres: running (port $PGPORT)"; else echo "postgres: stopped"; fi
  ;;
env)
  echo "export TEMPORAL_CONFIG_FILE=$DIR/temporal.toml TEMPORAL_PROFILE=cluster"
  ;;
-h | --help | help)
  sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
  ;;
*)
  sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
  ;;
esac
