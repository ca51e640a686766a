/**
 * The fixed shell scripts that run on nodes. They take only positional arguments; see buildCommand.
 * POSIX sh (dash) compatible. Field numbers refer to /proc/<pid>/stat after stripping "pid (comm) ":
 * $1=state, $3=pgrp, $4=session, $20=starttime (field 22).
 */
import { buildCommand } from './quote';
import type { NodeRow, ProcessIdentity } from '../common/types';
import { isAttemptToken, isBootId, isSignallablePid, isStartTime, isValidTaskId } from '../common/validate';

/** Runs in its own session: records identity, runs the command, records the exit code. */
const RUNNER = `
dir=$1; task=$2; attempt=$3; token=$4
pid=$$
boot=$(cat /proc/sys/kernel/random/boot_id)
read -r stat < /proc/$pid/stat; rest=\${stat##*') '}; set -- $rest; start=\${20}; sid=$4
now=$(date +%s)
head=$(printf '"pid":%s,"starttime":"%s","boot_id":"%s","sid":%s,"task":"%s","attempt":%s,"token":"%s","started_at":%s' "$pid" "$start" "$boot" "$sid" "$task" "$attempt" "$token" "$now")
printf '{%s,"state":"running"}\n' "$head" > "$dir/status.tmp" && mv -f "$dir/status.tmp" "$dir/status.json"
sh "$dir/command" > "$dir/stdout" 2> "$dir/stderr" < /dev/null
code=$?
printf '{%s,"state":"exited","exit_code":%s,"ended_at":%s}\n' "$head" "$code" "$(date +%s)" > "$dir/status.tmp" && mv -f "$dir/status.tmp" "$dir/status.json"
`;

/**
 * Launch: idempotent per attempt directory. mkdir is the lock, and the directory must prove that it
 * belongs to this attempt: its token file holds the token the row was dispatched with. A second
 * launch with the same token reports the first one's status.json instead of starting another copy.
 * A directory without our token (an earlier life of the same task id: a fresh database, a restored
 * backup, another database on the same nodes) is never trusted and never deleted: this attempt
 * launches into "<dir>.<first 12 hex of the token>" instead. An empty token (an attempt dispatched
 * before tokens existed) trusts the directory as before.
 * Prints "untrusted=<dir>" for a directory it passed over, then launched|existing, dir=, status=.
 */
const LAUNCH = `
set -u
dir=$1; task=$2; attempt=$3; cmd=$4; has_spec=$5; token=$6
umask 077
mkdir -p -- "\${dir%/*}" || { echo "error=cannot create \${dir%/*}"; exit 3; }
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
  abs=$(cd -- "$dir" && pwd -P)
  DISPATCH_TASK=$task DISPATCH_ATTEMPT=$attempt DISPATCH_ATTEMPT_TOKEN=$token DISPATCH_DIR=$abs DISPATCH_SPEC=$abs/spec.md \
    setsid sh -c "$RUNNER" dispatch-runner "$abs" "$task" "$attempt" "$token" < /dev/null > /dev/null 2>&1 &
  echo "launched"
else
  echo "existing"
fi
echo "dir=$dir"
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
 * Many probes in one command: args are (dir pid starttime boot) quadruples. One line per target:
 * "probe <pid> <starttime> boot=same|changed alive=0|1 status=<status.json or ->".
 */
const PROBE_MANY = `
read -r b < /proc/sys/kernel/random/boot_id
st_of() { r=\${1##*') '}; set -- $r; S=$1; T=\${20}; }
while [ $# -ge 4 ]; do
  dir=$1; pid=$2; start=$3; boot=$4; shift 4
  bs=same; [ "$b" = "$boot" ] || bs=changed
  alive=0
  if [ $bs = same ] && read -r stat 2>/dev/null < /proc/$pid/stat; then
    st_of "$stat"
    if [ "$S" != Z ] && [ "$T" = "$start" ]; then alive=1; fi
  fi
  js=-
  if [ -s "$dir/status.json" ]; then js=$(head -c 4096 "$dir/status.json" | tr -d '\\n'); fi
  echo "probe $pid $start boot=$bs alive=$alive status=$js"
done
`;

export function probeManyCommand(ids: readonly Pick<ProcessIdentity, 'dir' | 'pid' | 'starttime' | 'bootId'>[]): string {
  const args: (string | number)[] = [];
  for (const id of ids) {
    assertIdentity(id);
    args.push(id.dir, id.pid, id.starttime, id.bootId);
  }
  return buildCommand(PROBE_MANY, 'dispatch-probe-many', args);
}

/**
 * Checked kill of process groups, in one batch: args are boot grace then (pid starttime) pairs.
 * Before each signal the leader's start time and the boot id are checked again; a group whose
 * leader is now another process is never signalled. Prints one "result <pid> <outcome>" per pid.
 */
const KILL = `
boot=$1; grace=$2; shift 2
read -r cur < /proc/sys/kernel/random/boot_id
# ours PID START: 0 = the process is ours (alive or zombie; sets pg to its group), 1 = gone, 2 = another process has the pid
ours() {
  want=$2
  [ "$cur" = "$boot" ] || return 2
  if read -r s 2>/dev/null < /proc/$1/stat; then
    r=\${s##*') '}; set -- $r
    pg=$3
    [ "\${20}" = "$want" ] && return 0
    return 2
  fi
  return 1
}
# scan: live process groups " g1 g2 " and live processes " pid:start " (zombies do not count)
scan() {
  lg=" "; lp=" "
  for f in /proc/[0-9]*/stat; do
    read -r s 2>/dev/null < "$f" || continue
    p=\${f#/proc/}; p=\${p%/stat}
    r=\${s##*') '}; set -- $r
    [ "$1" = Z ] && continue
    lg="$lg$3 "; lp="$lp$p:\${20} "
  done
}
# alive T: T is pid:start:mode; mode g = the whole process group led by pid, p = that process only
alive() {
  t=$1; id=\${t%%:*}; rest=\${t#*:}; st=\${rest%%:*}; mode=\${rest#*:}
  if [ "$mode" = g ]; then case "$lg" in *" $id "*) return 0;; esac
  else case "$lp" in *" $id:$st "*) return 0;; esac; fi
  return 1
}
signal() {
  t=$1; id=\${t%%:*}; mode=\${t##*:}
  if [ "$mode" = g ]; then kill -$2 -"$id" 2>/dev/null; else kill -$2 "$id" 2>/dev/null; fi
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
    if alive "$t"; then left="$left $t"; else echo "result \${t%%:*} killed-term"; fi
  done
  ts=$left
  [ -n "$ts" ] && [ $i -lt $n ] || break
  sleep 0.1; i=$((i+1))
done
[ -n "$ts" ] || exit 0
kl=""
for t in $ts; do
  pid=\${t%%:*}; rest=\${t#*:}
  ours "$pid" "\${rest%%:*}"
  if [ $? -eq 2 ]; then echo "result $pid not-ours-at-kill"; else signal "$t" KILL; kl="$kl $t"; fi
done
ts=$kl
[ -n "$ts" ] || exit 0
j=0
while :; do
  scan; left=""
  for t in $ts; do alive "$t" && left="$left $t"; done
  [ -n "$left" ] && [ $j -lt 50 ] || break
  sleep 0.1; j=$((j+1))
done
for t in $ts; do
  if alive "$t"; then echo "result \${t%%:*} still-alive"; else echo "result \${t%%:*} killed-kill"; fi
done
`;

/**
 * Legacy rows recorded only a pid. For each pid print "ident <pid> <state> <starttime> <cmdline b64>
 * <DISPATCH_TASK value>" (or "ident <pid> gone") so the caller can check that the process names the
 * task before anything is signalled.
 */
const IDENTIFY = `
for pid in "$@"; do
  if read -r s 2>/dev/null < /proc/$pid/stat; then
    r=\${s##*') '}; set -- $r
    st=$1; start=\${20}
    cl=$(base64 -w0 2>/dev/null < /proc/$pid/cmdline)
    tk=$(tr '\\0' '\\n' 2>/dev/null < /proc/$pid/environ | sed -n 's/^DISPATCH_TASK=//p' | head -n 1)
    echo "ident $pid $st $start \${cl:--} \${tk:--}"
  else
    echo "ident $pid gone"
  fi
done
`;

/**
 * Lists the processes that dispatch launched under ONE work dir ($1) on a node:
 * "proc <pid> <state> <pgrp> <starttime> <task> <attempt> <token or ->". A process counts only when its
 * DISPATCH_DIR lies under the work dir's physical path, so another dispatch deployment on the same
 * host (its own work dir) is never listed, and therefore never killed. A missing work dir lists nothing.
 */
const LIST_TASK_PROCS = `
read -r b < /proc/sys/kernel/random/boot_id
if base=$(cd -- "$1" 2>/dev/null && pwd -P); then
for f in /proc/[0-9]*/environ; do
  pid=\${f#/proc/}; pid=\${pid%/environ}
  tk=""; at=""; to=""
  eval "$(tr '\\0' '\\n' 2>/dev/null < "$f" | sed -n -e 's/^DISPATCH_TASK=\\([A-Za-z0-9._-]*\\)$/tk=\\1/p' -e 's/^DISPATCH_ATTEMPT=\\([0-9]*\\)$/at=\\1/p' -e 's/^DISPATCH_ATTEMPT_TOKEN=\\([0-9a-f]*\\)$/to=\\1/p')"
  [ -n "$tk" ] || continue
  dd=$(tr '\\0' '\\n' 2>/dev/null < "$f" | sed -n 's/^DISPATCH_DIR=//p' | head -n 1)
  case "$dd" in "$base"/*) ;; *) continue ;; esac
  read -r s 2>/dev/null < /proc/$pid/stat || continue
  r=\${s##*') '}; set -- $r
  echo "proc $pid $1 $3 \${20} $tk \${at:-0} \${to:--}"
done
fi
echo "boot $b"
`;

/**
 * Attempt directories under a work dir not modified since `cutoff` (epoch seconds): one
 * "<token or -> <dir>" line each, the token read from the directory's token file.
 */
const PRUNE_LIST = `
[ -d "$1" ] || exit 0
find "$1" -mindepth 2 -maxdepth 2 -type d -name 'attempt-*' ! -newermt "@$2" -print 2>/dev/null | while IFS= read -r d; do
  t=-
  if [ -s "$d/token" ]; then read -r t < "$d/token" || t=-; fi
  case "$t" in *[!0-9a-f]*|'') t=- ;; esac
  printf '%s %s\n' "$t" "$d"
done
`;

const PRUNE_RM = `
for d in "$@"; do rm -rf -- "$d" && echo "removed $d"; done
`;

/** The node's work dir without trailing slashes (relative paths are relative to the login's home). */
export function workDirOf(node: Pick<NodeRow, 'work_dir'>): string {
  return (node.work_dir ?? '.dispatch/runs').replace(/\/+$/, '') || '/';
}

export function pruneListCommand(workDir: string, cutoffEpochS: number): string {
  return buildCommand(PRUNE_LIST, 'dispatch-prune-list', [workDir, Math.floor(cutoffEpochS)]);
}

/** Removes attempt directories; each must be <workDir>/<valid task id>/attempt-<n>. */
export function pruneRemoveCommand(workDir: string, dirs: readonly string[]): string {
  const base = workDir.replace(/\/+$/, '');
  for (const d of dirs) {
    const rest = d.startsWith(`${base}/`) ? d.slice(base.length + 1) : null;
    const m = rest ? ATTEMPT_DIR_RE.exec(rest) : null;
    if (!m || !isValidTaskId(m[1])) throw new Error(`refusing to remove ${JSON.stringify(d)}: not an attempt directory under ${base}`);
  }
  return buildCommand(PRUNE_RM, 'dispatch-prune', [...dirs]);
}

export function identifyCommand(pids: readonly number[]): string {
  for (const p of pids) if (!isSignallablePid(p)) throw new Error(`refusing pid ${JSON.stringify(p)}`);
  return buildCommand(IDENTIFY, 'dispatch-identify', [...pids]);
}

export function listTaskProcsCommand(workDir: string): string {
  return buildCommand(LIST_TASK_PROCS, 'dispatch-procs', [workDir]);
}

/** Node probe: answers with the boot id. */
export function pingCommand(): string {
  return buildCommand('read -r b < /proc/sys/kernel/random/boot_id; echo "pong $b"', 'dispatch-ping', []);
}

/** "<task>/attempt-<n>" or, for a later life that found the name taken, "<task>/attempt-<n>.<12 hex>". */
export const ATTEMPT_DIR_RE = /^([^/]+)\/attempt-([0-9]+)(?:\.([0-9a-f]{12}))?$/;

/** `token` is the attempt's token; '' only for an attempt dispatched before tokens existed. */
export function launchCommand(dir: string, taskId: string, attempt: number, command: string, hasSpec: boolean, token = ''): string {
  if (!isValidTaskId(taskId)) throw new Error(`unsafe task id ${JSON.stringify(taskId)}`);
  if (token !== '' && !isAttemptToken(token)) throw new Error(`invalid attempt token ${JSON.stringify(token)}`);
  const script = `RUNNER=${shqInline(RUNNER)}\n${LAUNCH}`;
  return buildCommand(script, 'dispatch-launch', [dir, taskId, attempt, command, hasSpec ? 1 : 0, token]);
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
