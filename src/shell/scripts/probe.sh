#!/bin/sh
# probe.sh: is the recorded process still the one we launched?
#
# Arguments: DIR PID STARTTIME BOOT_ID
#   DIR        the attempt directory
#   PID        the runner's pid
#   STARTTIME  its start time, /proc/<pid>/stat field 22
#   BOOT_ID    the boot id it was started in
#
# Output lines:
#   boot=same|changed  whether the node still runs the boot BOOT_ID names
#   alive=0|1          1 when PID is live (not a zombie), has STARTTIME and the boot is the same
#   status=<json>      the first 4096 bytes of DIR/status.json, only when that file is not empty
dir=$1; pid=$2; start=$3; boot=$4
b=$(cat /proc/sys/kernel/random/boot_id)
if [ "$b" != "$boot" ]; then echo "boot=changed"; else echo "boot=same"; fi
alive=0
if read -r stat 2>/dev/null < /proc/"$pid"/stat; then
  rest=${stat##*') '}
  # shellcheck disable=SC2086 # split the stat fields after "pid (comm) ": $1 is the state, ${20} the start time
  set -- $rest
  if [ "$1" != Z ] && [ "${20}" = "$start" ] && [ "$b" = "$boot" ]; then alive=1; fi
fi
echo "alive=$alive"
if [ -s "$dir/status.json" ]; then printf 'status='; head -c 4096 "$dir/status.json"; echo; fi
