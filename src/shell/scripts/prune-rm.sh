#!/bin/sh
# prune-rm.sh: removes attempt directories (pruneRemoveCommand checks each is one).
#
# Arguments: DIR...
#   DIR  an attempt directory, <work dir>/<task>/attempt-<n>
#
# Output lines, one per directory removed:
#   removed <dir>
for d in "$@"; do rm -rf -- "$d" && echo "removed $d"; done
