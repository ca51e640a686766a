/**
 * The fixed shell scripts that run on nodes. They take only positional arguments; see buildCommand.
 * POSIX sh (dash) compatible. Field numbers refer to /proc/<pid>/stat after stripping "pid (comm) ":
 * $1=state, $3=pgrp, $4=session, $20=starttime (field 22).
 */
import { buildCommand } from './quote';
import type { ProcessIdentity } from '../common/types';
import { isBootId, isSignallablePid, isStartTime, isValidTaskId } from '../common/validate';

/** Runs in its own session: records identity, runs the command, records the exit code. */
const RUNNER = `
dir=$1; task=$2; attempt=$3
pid=$$
boot=$(cat /proc/sys/kernel/random/boot_id)
read -r stat < /proc/$pid/stat; rest=\${stat##*') '}; set -- $rest; start=\${20}; sid=$4
now=$(date +%s)
head=$(printf '"pid":%s,"starttime":"%s","boot_id":"%s","sid":%s,"task":"%s","attempt":%s,"started_at":%s' "$pid" "$start" "$boot" "$sid" "$task" "$attempt" "$now")
printf '{%s,"state":"running"}\n' "$head" > "$dir/status.tmp" && mv -f "$dir/status.tmp" "$dir/status.json"
sh "$dir/command" > "$dir/stdout" 2> "$dir/stderr" < /dev/null
code=$?
printf '{%s,"state":"exited","exit_code":%s,"ended_at":%s}\n' "$head" "$code" "$(date +%s)" > "$dir/status.tmp" && mv -f "$dir/status.tmp" "$dir/status.json"
`;

/**
 * Launch: idempotent per attempt directory. mkdir is the lock: a second launch of the same attempt
 * reports the first one's status.json instead of starting another copy.
 */
const LAUNCH = `
set -u
dir=$1; task=$2; attempt=$3; cmd=$4; has_spec=$5
umask 077
mkdir -p -- "\${dir%/*}" || { echo "error=cannot create \${dir%/*}"; exit 3; }
if mkdir -- "$dir" 2>/dev/null; then
  if [ "$has_spec" = 1 ]; then cat > "$dir/spec.md"; fi
  printf '%s\n' "$cmd" > "$dir/command"
  abs=$(cd -- "$dir" && pwd -P)
  DISPATCH_TASK=$task DISPATCH_ATTEMPT=$attempt DISPATCH_DIR=$abs DISPATCH_SPEC=$abs/spec.md     setsid sh -c "$RUNNER" dispatch-runner "$abs" "$task" "$attempt" < /dev/null > /dev/null 2>&1 &
  echo "launched"
else
  echo "existing"
fi
i=0
while [ ! -s "$dir/status.json" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
if [ -s "$dir/status.json" ]; then printf 'status='; cat "$dir/status.json"; else echo "error=no status.json after launch"; exit 4; fi
`;

/** Is the recorded process still the one we launched? Prints alive=0|1, boot=same|changed, status=. */
const PROBE = `
dir=$1; pid=$2; start=$3; boot=$4
b=$(cat /proc/sys/kernel/random/boot_id)
if [ "$b" != "$boot" ]; then echo "boot=changed"; else echo "boot=same"; fi
alive=0
if read -r stat 2>/dev/null < /proc/$pid/stat; then
  rest=\${stat##*') '}; set -- $rest
  if [ "$1" != Z ] && [ "\${20}" = "$start" ] && [ "$b" = "$boot" ]; then alive=1; fi
fi
echo "alive=$alive"
if [ -s "$dir/status.json" ]; then printf 'status='; head -c 4096 "$dir/status.json"; echo; fi
`;

/**
 * Checked kill of process groups, in one batch: args are boot grace then (pid starttime) pairs.
 * Before each signal the leader's start time and the boot id are checked again; a group whose
 * leader is now another process is never signalled. Prints one "result <pid> <outcome>" per pid.
 */
const KILL = `
boot=$1; grace=$2; shift 2
read -r cur < /proc/sys/kernel/random/boot_id
# ours PID START: 0 = the leader is ours (alive or zombie), 1 = gone, 2 = another process has the pid
ours() {
  want=$2
  [ "$cur" = "$boot" ] || return 2
  if read -r s 2>/dev/null < /proc/$1/stat; then
    r=\${s##*') '}; set -- $r
    [ "\${20}" = "$want" ] && return 0
    return 2
  fi
  return 1
}
# live_groups: the process groups that have at least one non-zombie member, as " g1 g2 ... "
live_groups() {
  lg=" "
  for f in /proc/[0-9]*/stat; do
    read -r s 2>/dev/null < "$f" || continue
    r=\${s##*') '}; set -- $r
    [ "$1" = Z ] || lg="$lg$3 "
  done
}
has_group() { case "$lg" in *" $1 "*) return 0;; esac; return 1; }
live_groups
pids=""
while [ $# -ge 2 ]; do
  pid=$1; start=$2; shift 2
  ours "$pid" "$start"; rc=$?
  if [ $rc -eq 2 ]; then echo "result $pid not-ours"; continue; fi
  if [ $rc -eq 1 ] && ! has_group "$pid"; then echo "result $pid already-gone"; continue; fi
  kill -TERM -"$pid" 2>/dev/null
  pids="$pids $pid:$start"
done
[ -n "$pids" ] || exit 0
i=0; n=$((grace*10))
while :; do
  live_groups; left=""
  for ps in $pids; do
    if has_group "\${ps%%:*}"; then left="$left $ps"; else echo "result \${ps%%:*} killed-term"; fi
  done
  pids=$left
  [ -n "$pids" ] && [ $i -lt $n ] || break
  sleep 0.1; i=$((i+1))
done
[ -n "$pids" ] || exit 0
kl=""
for ps in $pids; do
  pid=\${ps%%:*}
  ours "$pid" "\${ps#*:}"
  if [ $? -eq 2 ]; then echo "result $pid not-ours-at-kill"; else kill -KILL -"$pid" 2>/dev/null; kl="$kl $ps"; fi
done
pids=$kl
[ -n "$pids" ] || exit 0
j=0
while :; do
  live_groups; left=""
  for ps in $pids; do has_group "\${ps%%:*}" && left="$left $ps"; done
  [ -n "$left" ] && [ $j -lt 50 ] || break
  sleep 0.1; j=$((j+1))
done
for ps in $pids; do
  if has_group "\${ps%%:*}"; then echo "result \${ps%%:*} still-alive"; else echo "result \${ps%%:*} killed-kill"; fi
done
`;

export function launchCommand(dir: string, taskId: string, attempt: number, command: string, hasSpec: boolean): string {
  if (!isValidTaskId(taskId)) throw new Error(`unsafe task id ${JSON.stringify(taskId)}`);
  const script = `RUNNER=${shqInline(RUNNER)}\n${LAUNCH}`;
  return buildCommand(script, 'dispatch-launch', [dir, taskId, attempt, command, hasSpec ? 1 : 0]);
}

export function probeCommand(id: Pick<ProcessIdentity, 'dir' | 'pid' | 'starttime' | 'bootId'>): string {
  assertIdentity(id);
  return buildCommand(PROBE, 'dispatch-probe', [id.dir, id.pid, id.starttime, id.bootId]);
}

export interface KillTarget {
  pid: number;
  starttime: string;
}

export function killCommand(bootId: string, graceS: number, targets: readonly KillTarget[]): string {
  if (!isBootId(bootId)) throw new Error(`invalid boot id ${JSON.stringify(bootId)}`);
  const grace = Math.max(0, Math.round(graceS));
  const args: (string | number)[] = [bootId, grace];
  for (const t of targets) {
    if (!isSignallablePid(t.pid)) throw new Error(`refusing to signal pid ${JSON.stringify(t.pid)}`);
    if (!isStartTime(t.starttime)) throw new Error(`invalid start time ${JSON.stringify(t.starttime)}`);
    args.push(t.pid, t.starttime);
  }
  return buildCommand(KILL, 'dispatch-kill', args);
}

export function assertIdentity(id: Pick<ProcessIdentity, 'pid' | 'starttime' | 'bootId'>): void {
  if (!isSignallablePid(id.pid)) throw new Error(`invalid pid ${JSON.stringify(id.pid)}`);
  if (!isStartTime(id.starttime)) throw new Error(`invalid start time ${JSON.stringify(id.starttime)}`);
  if (!isBootId(id.bootId)) throw new Error(`invalid boot id ${JSON.stringify(id.bootId)}`);
}

function shqInline(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
