#!/bin/sh
# list-task-procs.sh: the processes that dispatch launched under ONE work dir on this node.
# A process counts only when its DISPATCH_DIR lies under the work dir's physical path, so another
# dispatch deployment on the same host (its own work dir) is never listed, and therefore never killed.
# The eval runs only what the sed expressions emit: tk=, at= and to= with [A-Za-z0-9._-] values.
#
# Arguments: WORK_DIR
#   WORK_DIR  the node's work dir; a missing one lists no process
#
# Output lines:
#   proc <pid> <state> <pgrp> <starttime> <task> <attempt, or 0> <token, or ->   one per process
#   boot <boot id>                                                                always, last
read -r b < /proc/sys/kernel/random/boot_id
if base=$(cd -- "$1" 2>/dev/null && pwd -P); then
for f in /proc/[0-9]*/environ; do
  pid=${f#/proc/}; pid=${pid%/environ}
  tk=""; at=""; to=""
  eval "$(tr '\0' '\n' 2>/dev/null < "$f" | sed -n -e 's/^DISPATCH_TASK=\([A-Za-z0-9._-]*\)$/tk=\1/p' \
    -e 's/^DISPATCH_ATTEMPT=\([0-9]*\)$/at=\1/p' -e 's/^DISPATCH_ATTEMPT_TOKEN=\([0-9a-f]*\)$/to=\1/p')"
  [ -n "$tk" ] || continue
  dd=$(tr '\0' '\n' 2>/dev/null < "$f" | sed -n 's/^DISPATCH_DIR=//p' | head -n 1)
  case "$dd" in "$base"/*) ;; *) continue ;; esac
  read -r s 2>/dev/null < /proc/"$pid"/stat || continue
  r=${s##*') '}
  # shellcheck disable=SC2086 # split the stat fields after "pid (comm) ": $1 state, $3 group, ${20} start time
  set -- $r
  echo "proc $pid $1 $3 ${20} $tk ${at:-0} ${to:--}"
done
fi
echo "boot $b"
