#!/bin/sh
# kill.sh: checked kill of process groups, in one batch. Before each signal the leader's start time
# and the boot id are checked again; a group whose leader is now another process is never signalled.
# TERM first, KILL for what is still alive after GRACE_S seconds.
#
# Arguments: BOOT_ID GRACE_S (PID STARTTIME)...
#   BOOT_ID    the boot id the targets were started in
#   GRACE_S    seconds between TERM and KILL
#   PID        a target: the runner's pid, which leads its process group
#   STARTTIME  that runner's start time, /proc/<pid>/stat field 22
#
# Output lines, one per PID:
#   result <pid> rebooted|not-ours|already-gone|killed-term|not-ours-at-kill|killed-kill|still-alive
boot=$1; grace=$2; shift 2
read -r cur < /proc/sys/kernel/random/boot_id
# ours PID START: 0 = the process is ours (alive or zombie; sets pg to its group), 1 = gone, 2 = another process has the pid
ours() {
  want=$2
  [ "$cur" = "$boot" ] || return 2
  if read -r s 2>/dev/null < /proc/"$1"/stat; then
    r=${s##*') '}
    # shellcheck disable=SC2086 # split the stat fields after "pid (comm) ": $3 is the group, ${20} the start time
    set -- $r
    pg=$3
    [ "${20}" = "$want" ] && return 0
    return 2
  fi
  return 1
}
# scan: live process groups " g1 g2 " and live processes " pid:start " (zombies do not count)
scan() {
  lg=" "; lp=" "
  for f in /proc/[0-9]*/stat; do
    read -r s 2>/dev/null < "$f" || continue
    p=${f#/proc/}; p=${p%/stat}
    r=${s##*') '}
    # shellcheck disable=SC2086 # split the stat fields after "pid (comm) ": $1 state, $3 group, ${20} start time
    set -- $r
    [ "$1" = Z ] && continue
    lg="$lg$3 "; lp="$lp$p:${20} "
  done
}
# alive T: T is pid:start:mode; mode g = the whole process group led by pid, p = that process only
alive() {
  t=$1; id=${t%%:*}; rest=${t#*:}; st=${rest%%:*}; mode=${rest#*:}
  if [ "$mode" = g ]; then case "$lg" in *" $id "*) return 0;; esac
  else case "$lp" in *" $id:$st "*) return 0;; esac; fi
  return 1
}
signal() {
  t=$1; id=${t%%:*}; mode=${t##*:}
  if [ "$mode" = g ]; then kill -"$2" -"$id" 2>/dev/null; else kill -"$2" "$id" 2>/dev/null; fi
}
scan
ts=""
while [ $# -ge 2 ]; do
  pid=$1; start=$2; shift 2
  if [ "$cur" != "$boot" ]; then echo "result $pid rebooted"; continue; fi
  pg=""
  ours "$pid" "$start"; rc=$?
  if [ $rc -eq 2 ]; then echo "result $pid not-ours"; continue; fi
  # A leader that is gone may leave its group behind; the pid cannot be reused while the group lives.
  if [ $rc -eq 1 ]; then mode=g; elif [ "$pg" = "$pid" ]; then mode=g; else mode=p; fi
  t="$pid:$start:$mode"
  if ! alive "$t"; then echo "result $pid already-gone"; continue; fi
  signal "$t" TERM
  ts="$ts $t"
done
[ -n "$ts" ] || exit 0
i=0; n=$((grace*10))
while :; do
  scan; left=""
  for t in $ts; do
    if alive "$t"; then left="$left $t"; else echo "result ${t%%:*} killed-term"; fi
  done
  ts=$left
  # shellcheck disable=SC2015 # break unless both hold: targets are left and the grace has not run out
  [ -n "$ts" ] && [ $i -lt $n ] || break
  sleep 0.1; i=$((i+1))
done
[ -n "$ts" ] || exit 0
kl=""
for t in $ts; do
  pid=${t%%:*}; rest=${t#*:}
  ours "$pid" "${rest%%:*}"
  if [ $? -eq 2 ]; then echo "result $pid not-ours-at-kill"; else signal "$t" KILL; kl="$kl $t"; fi
done
ts=$kl
[ -n "$ts" ] || exit 0
j=0
while :; do
  scan; left=""
  for t in $ts; do alive "$t" && left="$left $t"; done
  # shellcheck disable=SC2015 # break unless both hold: targets are left and 5 s have not passed
  [ -n "$left" ] && [ $j -lt 50 ] || break
  sleep 0.1; j=$((j+1))
done
for t in $ts; do
  if alive "$t"; then echo "result ${t%%:*} still-alive"; else echo "result ${t%%:*} killed-kill"; fi
done
