#!/bin/sh
# runner.sh: the task's own session (launch.sh starts it with setsid). Records this process's identity,
# runs the command, records its exit code.
#
# Arguments: DIR TASK ATTEMPT TOKEN
#   DIR      the attempt directory, a physical absolute path
#   TASK     the task id
#   ATTEMPT  the attempt number
#   TOKEN    the attempt token, or '' for an attempt dispatched before tokens existed
#
# Output lines: none on stdout. It writes, each time by rename, DIR/status.json as one line:
#   {"pid":..,"starttime":"..","boot_id":"..","sid":..,"task":"..","attempt":..,"token":"..","started_at":..,"state":"running"}
#   the same fields with "state":"exited","exit_code":<code>,"ended_at":<epoch s> once the command ends.
# The command (DIR/command) runs with stdout and stderr in DIR/stdout and DIR/stderr.
dir=$1; task=$2; attempt=$3; token=$4
pid=$$
read -r boot < /proc/sys/kernel/random/boot_id
read -r stat < /proc/$pid/stat; rest=${stat##*') '}
# shellcheck disable=SC2086 # split the stat fields after "pid (comm) ": ${20} is the start time, $4 the session
set -- $rest; start=${20}; sid=$4
now=$(date +%s)
# Built without a subshell (no fork): every field is digits, hex, or a validated task id.
head="\"pid\":$pid,\"starttime\":\"$start\",\"boot_id\":\"$boot\",\"sid\":$sid,\"task\":\"$task\",\"attempt\":$attempt,\"token\":\"$token\",\"started_at\":$now"
printf '{%s,"state":"running"}\n' "$head" > "$dir/status.tmp" && mv -f "$dir/status.tmp" "$dir/status.json"
sh "$dir/command" > "$dir/stdout" 2> "$dir/stderr" < /dev/null
code=$?
printf '{%s,"state":"exited","exit_code":%s,"ended_at":%s}\n' "$head" "$code" "$(date +%s)" > "$dir/status.tmp" &&
  mv -f "$dir/status.tmp" "$dir/status.json"
