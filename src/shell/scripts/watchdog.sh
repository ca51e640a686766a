#!/bin/sh
# watchdog.sh: the self-fence of one attempt. launch.sh starts it in a session of its own (setsid), so
# a task that signals its own process group, even with SIGKILL, cannot take it along. Every supervise
# probe refreshes DIR/lease with this node's uptime; when no probe has done so for FENCE_S seconds,
# the node has lost contact with its supervisor, and the task's process group is stopped: TERM, GRACE_S
# seconds, KILL. The ages are read off this node's own clock (/proc/uptime) only. It ends when the task
# ends, and never signals a group whose leader is not the runner it was started for.
#
# Arguments: DIR PID STARTTIME FENCE_S GRACE_S
#   DIR        the attempt directory (holds lease, status.json)
#   PID        the runner's pid, which leads the task's process group and session
#   STARTTIME  the runner's start time, /proc/<pid>/stat field 22
#   FENCE_S    seconds without a lease refresh after which the attempt is fenced (whole seconds, > 0)
#   GRACE_S    seconds between TERM and KILL
#
# Output lines: none on stdout. It appends one line to DIR/watchdog.log when it ends ("ended: ..."). When
# it fences, it writes DIR/fenced (one line of JSON:
#   {"fenced_at":<epoch s>,"lease_age_s":<s>,"fence_after_s":<s>}) before the first signal, and, once
# the group is gone, DIR/status.json (by rename) with "state":"exited", the exit code (143 after TERM,
# 137 after KILL) and "fenced_at", unless the runner recorded its own exit first.
dir=$1; pid=$2; start=$3; fence=$4; grace=$5
# ours: 0 while the runner is alive (not a zombie) and is still the process we were started for
ours() {
  read -r s 2>/dev/null < /proc/"$pid"/stat || return 1
  r=${s##*') '}
  # shellcheck disable=SC2086 # split the stat fields after "pid (comm) ": $1 state, ${20} start time
  set -- $r
  [ "$1" != Z ] && [ "${20}" = "$start" ]
}
# group_alive: 0 while any live (non-zombie) process is in the runner's process group. The leader
# alive means yes and no member at all (kill -0 fails) means no, without a look at every process:
# only members left behind, or zombies that nobody reaps, need the scan of /proc (costly on a node
# running thousands of tasks, when many fences fall at once).
group_alive() {
  ours && return 0
  kill -0 -"$pid" 2>/dev/null || return 1
  for f in /proc/[0-9]*/stat; do
    read -r s 2>/dev/null < "$f" || continue
    r=${s##*') '}
    # shellcheck disable=SC2086 # split the stat fields after "pid (comm) ": $1 state, $3 group
    set -- $r
    [ "$1" != Z ] && [ "$3" = "$pid" ] && return 0
  done
  return 1
}
# running: status.json (one line) still says running; a builtin read, no fork at every tick
running() {
  read -r js 2>/dev/null < "$dir/status.json" || return 1
  case "$js" in *'"state":"running"'*) return 0 ;; esac
  return 1
}
ended() { printf '%s ended: %s\n' "$(date +%s)" "$1" >> "$dir/watchdog.log"; }
# One sleep per tick is the watchdog's only fork while all is well. A fence falls at most one tick
# late, which FENCE_MARGIN_S (30 s) covers; a long fence ticks less often.
tick=5
[ "$fence" -ge 300 ] && tick=10
[ "$fence" -lt 20 ] && tick=1
while ours && running; do
  sleep "$tick"
  read -r lease 2>/dev/null < "$dir/lease" || lease=0
  case "$lease" in ''|*[!0-9]*) lease=0 ;; esac
  # Builtins only: a $(...) here would fork once per tick per task.
  read -r now _ < /proc/uptime; now=${now%%.*}
  age=$((now - lease))
  [ "$age" -gt "$fence" ] || continue
  if ! ours || ! running; then break; fi
  at=$(date +%s)
  printf '{"fenced_at":%s,"lease_age_s":%s,"fence_after_s":%s}\n' "$at" "$age" "$fence" > "$dir/fenced.tmp" &&
    mv -f "$dir/fenced.tmp" "$dir/fenced"
  kill -TERM -"$pid" 2>/dev/null
  code=143
  i=0
  while group_alive && [ $i -lt $((grace * 10)) ]; do sleep 0.1; i=$((i + 1)); done
  if group_alive; then
    # Signal the group only while its leader is still ours (or gone: a group outlives its leader,
    # and its id cannot be reused while any member lives).
    if ours || ! read -r _ 2>/dev/null < /proc/"$pid"/stat; then kill -KILL -"$pid" 2>/dev/null; code=137; fi
    j=0
    while group_alive && [ $j -lt 50 ]; do sleep 0.1; j=$((j + 1)); done
  fi
  if running; then
    head=$(sed -e 's/,"state":"running"}$//' -e 's/^{//' "$dir/status.json")
    printf '{%s,"state":"exited","exit_code":%s,"ended_at":%s,"fenced_at":%s}\n' "$head" "$code" "$(date +%s)" "$at" \
      > "$dir/status.fence.tmp" && mv -f "$dir/status.fence.tmp" "$dir/status.json"
  fi
  ended "fenced after ${age}s without a lease refresh (exit code $code)"
  exit 0
done
if running; then ended "the runner is gone"; else ended "the task exited"; fi
