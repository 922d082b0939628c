# A throwaway PostgreSQL cluster from Debian's postgresql package: data, socket and log under
# one folder, the server in the foreground of a background job so its PID is ours.
# The server refuses to run as root: as root it runs as the package's postgres user.
# Usage: start_postgres FOLDER PORT [FAST]   (sets POSTGRES_PID; FAST=1 turns fsync off, tests only)
#        stop_postgres                       (an immediate shutdown of the server started)
# Connect as postgres://tether@127.0.0.1:PORT/DATABASE (trust on loopback); create_database NAME.

postgres_bin() {
    local newest
    newest=$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1)
    [ -n "$newest" ] || { echo "error: PostgreSQL is not installed (apt-get install postgresql)" >&2; return 1; }
    echo "/usr/lib/postgresql/$newest/bin"
}

as_postgres() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_postgres() {
    local folder=$1 port=$2 fast=${3:-0} bin
    bin=$(postgres_bin)
    mkdir -p "$folder"
    [ "$(id -u)" -eq 0 ] && chown postgres "$folder"
    as_postgres "$bin/initdb" -D "$folder/data" -A trust -U tether --no-sync -E UTF8 >"$folder/initdb.log" 2>&1 \
        || { cat "$folder/initdb.log" >&2; return 1; }
    local options=(-c listen_addresses=127.0.0.1 -c max_connections=200)
    [ "$fast" = 1 ] && options+=(-c fsync=off -c synchronous_commit=off -c full_page_writes=off)
    as_postgres "$bin/postgres" -D "$folder/data" -p "$port" -k "$folder" "${options[@]}" >"$folder/server.log" 2>&1 &
    POSTGRES_PID=$!
    POSTGRES_PORT=$port
    POSTGRES_FOLDER=$folder
    for _ in $(seq 1 200); do
        "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" && return 0
        kill -0 "$POSTGRES_PID" 2>/dev/null || break
        sleep 0.05
    done
    cat "$folder/server.log" >&2
    echo "error: PostgreSQL did not start on port $port" >&2
    return 1
}

create_database() {
    "$(postgres_bin)/psql" -X -q -h 127.0.0.1 -p "$POSTGRES_PORT" -U tether -d postgres -c "CREATE DATABASE $1"
}

stop_postgres() {
    [ -n "${POSTGRES_FOLDER:-}" ] || return 0
    local pid
    pid=$(head -1 "$POSTGRES_FOLDER/data/postmaster.pid" 2>/dev/null || true)
    [ -n "$pid" ] && kill -QUIT "$pid" 2>/dev/null || true
    wait "${POSTGRES_PID:-}" 2>/dev/null || true
}
