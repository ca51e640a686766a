#!/bin/sh
# probe-many.sh: probe.sh for many attempts in one command.
#
# Arguments: (DIR PID STARTTIME BOOT_ID UNTIL)...
#   DIR        an attempt directory
#   PID        its runner's pid
#   STARTTIME  the runner's start time, /proc/<pid>/stat field 22
#   BOOT_ID    the boot id it was started in
#   UNTIL      this node's uptime (whole seconds) past which this probe must not refresh the lease;
#              0: read only. The supervisor's refresh horizon, carried to the node so that a command
#              that arrives late (a frozen worker, a stuck socket) cannot extend a lease
#              (src/activities/refresh.ts, docs/FENCE.md).
#
# Each probe of a live process keeps its lease fresh (DIR/lease: this node's uptime in seconds), which
# keeps the attempt's watchdog (watchdog.sh) from fencing it, while the uptime is at most UNTIL. The
# file is rewritten (one mv) only once it is a tenth of the attempt's fence_after old (DIR/fence_after;
# always when that is unreadable or 0), so that a node with hundreds of tasks does not fork a rename
# for each of them at every probe. lease=1 says the lease is that fresh now; what it holds is never
# later than this probe. Everything else is read with builtins; status.json costs one `head` (its
# first 4 KiB).
#
# Output lines: first `node boot=<this boot id> up=<uptime, whole seconds>`, then one per quintuple:
#   probe <pid> <starttime> boot=same|changed alive=0|1 lease=0|1 status=<DIR/status.json on one line, or ->
NL='
'
read -r b < /proc/sys/kernel/random/boot_id
read -r up _ < /proc/uptime; up=${up%%.*}
echo "node boot=$b up=$up"
# shellcheck disable=SC2086 # split the stat fields after "pid (comm) ": $1 is the state, ${20} the start time
st_of() { r=${1##*') '}; set -- $r; S=$1; T=${20}; }
while [ $# -ge 5 ]; do
  dir=$1; pid=$2; start=$3; boot=$4; until=$5; shift 5
  case "$until" in ''|*[!0-9]*) until=0 ;; esac
  bs=same; [ "$b" = "$boot" ] || bs=changed
  alive=0
  if [ $bs = same ] && read -r stat 2>/dev/null < /proc/"$pid"/stat; then
    st_of "$stat"
    if [ "$S" != Z ] && [ "$T" = "$start" ]; then alive=1; fi
  fi
  lease=0
  if [ $alive = 1 ] && [ -d "$dir" ]; then
    l=; fa=
    read -r l 2>/dev/null < "$dir/lease" || l=
    read -r fa 2>/dev/null < "$dir/fence_after" || fa=
    case "$l" in ''|*[!0-9]*) l=-1 ;; esac
    case "$fa" in ''|*[!0-9]*) fa=0 ;; esac
    if [ "$l" -ge 0 ] && [ "$fa" -gt 0 ] && [ $(( (up - l) * 10 )) -lt "$fa" ] && [ "$l" -le "$up" ]; then
      lease=1
    elif [ "$up" -gt "$until" ]; then
      lease=0
    elif printf '%s\n' "$up" > "$dir/lease.tmp" && mv -f "$dir/lease.tmp" "$dir/lease"; then
      lease=1
    fi
  fi
  js=-
  if [ -s "$dir/status.json" ]; then
    js=$(head -c 4096 "$dir/status.json")
    # One line of JSON, or nothing: a newline inside would forge probe lines of other attempts.
    case "$js" in *"$NL"*) js=- ;; esac
  fi
  echo "probe $pid $start boot=$bs alive=$alive lease=$lease status=$js"
done
