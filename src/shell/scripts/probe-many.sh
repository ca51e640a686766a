#!/bin/sh
# probe-many.sh: probe.sh for many attempts in one command.
#
# Arguments: (DIR PID STARTTIME BOOT_ID)...
#   DIR        an attempt directory
#   PID        its runner's pid
#   STARTTIME  the runner's start time, /proc/<pid>/stat field 22
#   BOOT_ID    the boot id it was started in
#
# Each probe of a live process refreshes its lease (DIR/lease: this node's uptime in seconds), which
# keeps the attempt's watchdog (watchdog.sh) from fencing it.
#
# Output lines, one per quadruple:
#   probe <pid> <starttime> boot=same|changed alive=0|1 lease=0|1 status=<DIR/status.json on one line, or ->
read -r b < /proc/sys/kernel/random/boot_id
read -r up _ < /proc/uptime; up=${up%%.*}
# shellcheck disable=SC2086 # split the stat fields after "pid (comm) ": $1 is the state, ${20} the start time
st_of() { r=${1##*') '}; set -- $r; S=$1; T=${20}; }
while [ $# -ge 4 ]; do
  dir=$1; pid=$2; start=$3; boot=$4; shift 4
  bs=same; [ "$b" = "$boot" ] || bs=changed
  alive=0
  if [ $bs = same ] && read -r stat 2>/dev/null < /proc/"$pid"/stat; then
    st_of "$stat"
    if [ "$S" != Z ] && [ "$T" = "$start" ]; then alive=1; fi
  fi
  lease=0
  if [ $alive = 1 ] && [ -d "$dir" ] && printf '%s\n' "$up" > "$dir/lease.tmp" && mv -f "$dir/lease.tmp" "$dir/lease"; then lease=1; fi
  js=-
  if [ -s "$dir/status.json" ]; then js=$(head -c 4096 "$dir/status.json" | tr -d '\n'); fi
  echo "probe $pid $start boot=$bs alive=$alive lease=$lease status=$js"
done
