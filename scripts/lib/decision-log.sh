# The daemon's decision-log counters, for the benchmark scripts.
#
#   source scripts/lib/decision-log.sh
#   daemon_metric PORT NAME            # prints a counter of /metrics as a whole number (0 if absent)
#   wait_decision_log_idle PORT        # returns once nothing was written for a second (at most 2 min)

daemon_metric() {
    curl -sf "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m {printf "%d\n", $2; found = 1} END {if (!found) print 0}'
}

# A run after a saturating one would otherwise measure the writer storing what that one left
# queued, not the run itself.
wait_decision_log_idle() {
    local port=$1 last=-1 now
    for _ in $(seq 1 120); do
        now=$(daemon_metric "$port" tether_decisions_written_total)
        [[ $now == "$last" ]] && return 0
        last=$now
        sleep 1
    done
}
