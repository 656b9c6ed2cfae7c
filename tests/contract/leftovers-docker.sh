#!/bin/sh
# Leftover hook for exec.docker: prints how many containers (any state) and
# volumes carrying the label io.script-executor.execution-id=$1 exist.  The
# docker CLI is used only as an observer.
#   contract_suite --leftover-cmd 'sh tests/contract/leftovers-docker.sh %s'
id=${1:?execution id}
label="io.script-executor.execution-id=$id"
c=$(docker ps -aq --filter "label=$label") || exit 1
v=$(docker volume ls -q --filter "label=$label") || exit 1
printf '%s\n' $c $v | grep -c . || true
