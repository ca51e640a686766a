#!/bin/sh
# launch.sh: starts runner.sh for one attempt, idempotently per attempt directory.
# mkdir is the lock, and the directory must prove that it belongs to this attempt: its token file
# holds the token the row was dispatched with. A second launch with the same token reports the first
# one's status.json instead of starting another copy. A directory without our token (an earlier life
# of the same task id: a fresh database, a restored backup, another database on the same nodes) is
# never trusted and never deleted: this attempt launches into "DIR.<first 12 hex of TOKEN>" instead.
# An empty TOKEN (an attempt dispatched before tokens existed) trusts the directory.
#
# Arguments: DIR TASK ATTEMPT CMD HAS_SPEC TOKEN FENCE_S GRACE_S [EXIT_WAIT_MS]
#   DIR       the attempt directory, <work dir>/<task>/attempt-<n>
#   TASK      the task id (DISPATCH_TASK)
#   ATTEMPT   the attempt number (DISPATCH_ATTEMPT)
#   CMD       the task's shell command, written to DIR/command
#   HAS_SPEC  1: stdin is the spec, saved as DIR/spec.md; 0: no spec
#   TOKEN     32 hex digits, or '' for an attempt dispatched before tokens existed
#   FENCE_S   fence_after in whole seconds: a watchdog (watchdog.sh) stops the task when no probe has
#             refreshed DIR/lease for that long; 0 starts no watchdog
#   GRACE_S   kill_grace for the watchdog's TERM, grace, KILL
#   EXIT_WAIT_MS  wait up to this long (whole ms, 0: not at all) for the command to end before
#             printing status, so that a command that ends at once is reported with its exit code
# Also $RUNNER and $WATCHDOG: the texts of runner.sh and watchdog.sh, which launchCommand assigns in
# front of this script.
#
# Output lines:
#   untrusted=<dir>    only when DIR was passed over because it does not hold TOKEN
#   launched|existing  whether this call started the runner or found this attempt's directory
#   dir=<dir>          the directory in use (DIR or DIR.<12 hex>)
#   fence_after=<s>    the fence this attempt's watchdog enforces (0: none), as its first launch set it
#   status=<json>      the runner's status.json
#   error=<message>    instead of the lines it cannot print; exit 3 (no parent), 4 (no status), 5 (untrusted)
set -u
dir=$1; task=$2; attempt=$3; cmd=$4; has_spec=$5; token=$6; fence=${7:-0}; grace=${8:-10}; exit_wait=${9:-0}
case "$exit_wait" in ''|*[!0-9]*) echo "error=bad EXIT_WAIT_MS"; exit 6 ;; esac
case "$fence" in ''|*[!0-9]*) echo "error=bad FENCE_S"; exit 6 ;; esac
case "$grace" in ''|*[!0-9]*) echo "error=bad GRACE_S"; exit 6 ;; esac
umask 077
mkdir -p -- "${dir%/*}" || { echo "error=cannot create ${dir%/*}"; exit 3; }
# claim D: 0 = created it (token written first), 1 = it exists and is this attempt's, 2 = it is not
claim() {
  if mkdir -- "$1" 2>/dev/null; then
    if [ -n "$token" ]; then printf '%s\n' "$token" > "$1/token.tmp" && mv -f "$1/token.tmp" "$1/token"; fi
    return 0
  fi
  [ -n "$token" ] || return 1
  # The launch that created it writes the token before anything else: wait for it briefly.
  i=0
  while [ ! -s "$1/token" ] && [ ! -s "$1/status.json" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
  if [ -s "$1/token" ] && [ "$(cat "$1/token")" = "$token" ]; then return 1; fi
  return 2
}
claim "$dir"; rc=$?
if [ $rc -eq 2 ]; then
  echo "untrusted=$dir"
  dir="$dir.$(printf '%.12s' "$token")"
  claim "$dir"; rc=$?
  if [ $rc -eq 2 ]; then echo "error=$dir exists and does not hold this attempt's token"; exit 5; fi
fi
if [ $rc -eq 0 ]; then
  if [ "$has_spec" = 1 ]; then cat > "$dir/spec.md"; fi
  printf '%s\n' "$cmd" > "$dir/command"
  # The first lease is the launch itself; fence_after is fixed for the attempt's life.
  read -r up _ < /proc/uptime; printf '%s\n' "${up%%.*}" > "$dir/lease"
  printf '%s\n' "$fence" > "$dir/fence_after"
  abs=$(cd -- "$dir" && pwd -P)
  DISPATCH_TASK=$task DISPATCH_ATTEMPT=$attempt DISPATCH_ATTEMPT_TOKEN=$token DISPATCH_DIR=$abs DISPATCH_SPEC=$abs/spec.md \
    setsid sh -c "$RUNNER" dispatch-runner "$abs" "$task" "$attempt" "$token" < /dev/null > /dev/null 2>&1 &
  echo "launched"
else
  echo "existing"
fi
echo "dir=$dir"
i=0
while [ ! -s "$dir/status.json" ] && [ $i -lt 1000 ]; do sleep 0.01; i=$((i+1)); done
if [ ! -s "$dir/status.json" ]; then echo "error=no status.json after launch"; exit 4; fi
fa=0
if [ -s "$dir/fence_after" ]; then read -r fa < "$dir/fence_after"; fi
if [ $rc -eq 0 ] && [ "$fa" -gt 0 ]; then
  # The watchdog learns the runner's identity from status.json; a session of its own, no task env.
  # Read with builtins only (no fork): status.json is one line that runner.sh wrote.
  read -r st < "$dir/status.json" || st=''
  wpid=${st#*\"pid\":}; wpid=${wpid%%,*}
  wstart=${st#*\"starttime\":\"}; wstart=${wstart%%\"*}
  case "$wpid$wstart" in ''|*[!0-9]*) wpid='' ;; esac
  if [ -n "$wpid" ] && [ -n "$wstart" ]; then
    setsid sh -c "$WATCHDOG" dispatch-watchdog "$abs" "$wpid" "$wstart" "$fa" "$grace" < /dev/null > /dev/null 2>&1 &
  fi
fi
echo "fence_after=$fa"
# A command that ends within EXIT_WAIT_MS is reported exited (read is a builtin: no fork per look).
w=0
while [ "$w" -lt "$exit_wait" ]; do
  read -r now_st < "$dir/status.json" 2>/dev/null || now_st=''
  case "$now_st" in *'"state":"running"'*) ;; *) break ;; esac
  sleep 0.01; w=$((w + 10))
done
printf 'status='; cat "$dir/status.json"
