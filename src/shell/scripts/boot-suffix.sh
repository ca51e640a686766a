#!/bin/sh
# boot-suffix.sh: not a script of its own: appended as "; <this line>" after identify.sh's command
# (identifyWithBootCommand), so the node reports the boot the start times were read in. It must stay
# one line.
#
# Arguments: none
#
# Output lines:
#   boot <boot id>
read -r b < /proc/sys/kernel/random/boot_id; echo "boot $b"
