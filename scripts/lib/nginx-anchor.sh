# The check's external anchor: nginx answering every POST /v1/check with a fixed answer of a
# check's size, offered the same questions by the same generator at the same rate. It does
# no work per request, so its latency is what the machine, the loopback and the generator
# allow; the gap to Tether's is Tether's.
#
#   source scripts/lib/nginx-anchor.sh
#   nginx_anchor BIN WORKLOAD RATE SECONDS [CHECK-RATE OPTIONS…]   # prints anchor.nginx.* lines
#
# Needs free_port (scripts/lib/slapd.sh). Prints a note and nothing else without nginx
# (apt-get install nginx-light).

nginx_anchor() {
    local bin=$1 workload=$2 rate=$3 seconds=$4
    shift 4
    local nginx
    nginx=$(command -v nginx || echo /usr/sbin/nginx)
    if [[ ! -x $nginx ]]; then
        echo "anchor.nginx skipped  # nginx is not installed (apt-get install nginx-light)"
        return 0
    fi
    local dir port pid
    dir=$(mktemp -d /tmp/tether-anchor.XXXXXX)
    port=$(free_port)
    # Two workers, as the daemon has two event loops; an answer as long as a check's.
    cat >"$dir/nginx.conf" <<CONF
worker_processes 2;
pid $dir/nginx.pid;
error_log $dir/error.log;
daemon off;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 1000000000;
    keepalive_timeout 60s;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    server {
        listen 127.0.0.1:$port;
        location = /v1/check {
            default_type application/json;
            return 200 '{"allowed":true,"grant":"g_cff3070767142aa1102521bac0aa8cab","policy":"dept-01-docs","reason":"granted by policy dept-01-docs","decision":"d_0123456789abcdef0123456789abcdef","revision":1}';
        }
    }
}
CONF
    "$nginx" -c "$dir/nginx.conf" -p "$dir" 2>"$dir/start.log" &
    pid=$!
    for _ in $(seq 1 100); do
        curl -sf -X POST -d '{}' "http://127.0.0.1:$port/v1/check" >/dev/null 2>&1 && break
        sleep 0.05
    done
    local cpu_before cpu_after
    cpu_before=$(nginx_cpu "$pid")
    timeout $((seconds + 60)) "$bin/tether-bench" check-rate --workload "$workload" --port "$port" --rate "$rate" \
        --seconds "$seconds" "$@" | sed 's/^checkrate\./anchor.nginx./'
    cpu_after=$(nginx_cpu "$pid")
    echo "anchor.nginx.server_cpu_us_per_request $(awk -v t="$((cpu_after - cpu_before))" -v hz="$(getconf CLK_TCK)" \
        -v n="$((rate * (seconds + 2)))" 'BEGIN {printf "%.1f", t / hz * 1e6 / n}')  # the two workers', warm-up included"
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -rf "$dir"
}

# The user and system time of nginx's workers (children of `pid`), in clock ticks.
nginx_cpu() {
    local total=0 child
    for child in $(pgrep -P "$1"); do
        total=$((total + $(awk '{print $14 + $15}' "/proc/$child/stat")))
    done
    echo "$total"
}
