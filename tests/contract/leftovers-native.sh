#!/bin/sh
# Leftover hook for processes on this host (exec.native): prints how many
# processes of execution $1 are still alive.  The suite's sh dialect puts
# the marker "sx-leftover-<execution id>" on the command line of every
# process its cleanup script leaves behind.  The bracket keeps pgrep from
# counting this hook's own shell.
#   contract_suite --leftover-cmd 'sh tests/contract/leftovers-native.sh %s'
id=${1:?execution id}
pgrep -c -f -- "sx-[l]eftover-$id" || true
