#!/bin/sh
# identify.sh: what each pid is now, for legacy rows that recorded only a pid, so the caller can
# check that the process names the task before anything is signalled.
#
# Arguments: PID...
#   PID  a pid to describe
#
# Output lines, one per PID:
#   ident <pid> <state> <starttime> <cmdline in base64, or -> <DISPATCH_TASK value, or ->
#   ident <pid> gone
for pid in "$@"; do
  if read -r s 2>/dev/null < /proc/"$pid"/stat; then
    r=${s##*') '}
    # shellcheck disable=SC2086 # split the stat fields after "pid (comm) ": $1 is the state, ${20} the start time
    set -- $r
    st=$1; start=${20}
    cl=$(base64 -w0 2>/dev/null < /proc/"$pid"/cmdline)
    tk=$(tr '\0' '\n' 2>/dev/null < /proc/"$pid"/environ | sed -n 's/^DISPATCH_TASK=//p' | head -n 1)
    echo "ident $pid $st $start ${cl:--} ${tk:--}"
  else
    echo "ident $pid gone"
  fi
done
