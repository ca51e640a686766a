#!/bin/sh
# prune-list.sh: attempt directories under a work dir not modified since a cutoff.
#
# Arguments: WORK_DIR CUTOFF
#   WORK_DIR  the node's work dir; a missing one lists nothing
#   CUTOFF    epoch seconds; only directories last modified before it are listed
#
# Output lines, one per <WORK_DIR>/<task>/attempt-* directory:
#   <token, or -> <dir>   the token read from the directory's token file (- when missing or not hex)
[ -d "$1" ] || exit 0
find "$1" -mindepth 2 -maxdepth 2 -type d -name 'attempt-*' ! -newermt "@$2" -print 2>/dev/null | while IFS= read -r d; do
  t=-
  if [ -s "$d/token" ]; then read -r t < "$d/token" || t=-; fi
  case "$t" in *[!0-9a-f]*|'') t=- ;; esac
  printf '%s %s\n' "$t" "$d"
done
