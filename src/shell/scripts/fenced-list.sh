#!/bin/sh
# fenced-list.sh: the attempt directories under a work dir whose watchdog fenced them.
#
# Arguments: WORK_DIR
#   WORK_DIR  the node's work dir; a missing one lists nothing
#
# Output lines, one per <WORK_DIR>/<task>/attempt-* directory that holds a fenced file:
#   fenced <token, or -> <dir> <the fenced file on one line>
[ -d "$1" ] || exit 0
find "$1" -mindepth 3 -maxdepth 3 -type f -name fenced -path '*/attempt-*/fenced' -print 2>/dev/null | while IFS= read -r f; do
  d=${f%/fenced}
  t=-
  if [ -s "$d/token" ]; then read -r t < "$d/token" || t=-; fi
  case "$t" in *[!0-9a-f]*|'') t=- ;; esac
  printf 'fenced %s %s %s\n' "$t" "$d" "$(head -c 512 "$f" | tr -d '\n')"
done
