#!/bin/sh
# logs.sh: an attempt's output, all of it or its last lines, optionally followed until the attempt ends.
#
# Arguments: DIR WHICH TAIL FOLLOW PID STARTTIME
#   DIR        an attempt directory
#   WHICH      stdout | stderr | both (both: DIR/stdout to stdout, DIR/stderr to stderr)
#   TAIL       0 for everything, otherwise the number of last lines
#   FOLLOW     1: keep printing what is appended until the runner PID (with STARTTIME,
#              /proc/<pid>/stat field 22) is gone (a zombie counts as gone); 0: print and end
#   PID        the runner's pid, or 0 when unknown (then FOLLOW ends at once)
#   STARTTIME  the runner's start time, or 0
#
# Output lines:
#   <each line of DIR/stdout (and, to stderr, DIR/stderr), as it is>
# Exit 3, printing nothing, when DIR does not exist (pruned, or never created on this node): the
# caller says so in its own words.
dir=$1; which=$2; n=$3; follow=$4; pid=$5; start=$6
[ -d "$dir" ] || exit 3
if [ "$n" = 0 ]; then from=+1; else from=$n; fi
# shellcheck disable=SC2086 # split the stat fields after "pid (comm) ": $1 is the state, ${20} the start time
alive() {
  [ "$pid" != 0 ] || return 1
  read -r stat 2>/dev/null < /proc/"$pid"/stat || return 1
  r=${stat##*') '}; set -- $r
  [ "$1" != Z ] && [ "${20}" = "$start" ]
}
out() { # FILE: to stdout, or to stderr for DIR/stderr when both are asked for
  f=$dir/$1
  [ -e "$f" ] || : > /dev/null
  if [ "$which" = both ] && [ "$1" = stderr ]; then tail -n "$from" "$f" >&2 2>/dev/null; else tail -n "$from" "$f" 2>/dev/null; fi
}
if [ "$follow" != 1 ] || ! alive; then
  case $which in
    stdout) out stdout ;;
    stderr) out stderr ;;
    both) out stdout; out stderr ;;
  esac
  exit 0
fi
t1=; t2=
case $which in
  stdout) tail -n "$from" -f "$dir/stdout" & t1=$! ;;
  stderr) tail -n "$from" -f "$dir/stderr" & t1=$! ;;
  both) tail -n "$from" -f "$dir/stdout" & t1=$!; tail -n "$from" -f "$dir/stderr" >&2 & t2=$! ;;
esac
# Until the runner ends (or the reader went away and took the tail with it).
while alive && kill -0 "$t1" 2>/dev/null; do sleep 0.5; done
sleep 1.2 # tail -f looks every second: let it print the last lines
kill "$t1" $t2 2>/dev/null
wait 2>/dev/null
exit 0
