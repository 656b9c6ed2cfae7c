#!/bin/sh
# Every plugin in DIR must export exactly one dynamic symbol: sx_plugin_entry.
dir=${1:?usage: check_plugin_exports.sh PLUGIN_DIR}
status=0
count=0
for so in "$dir"/*.so; do
  count=$((count + 1))
  syms=$(nm -D --defined-only "$so" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' | sort -u)
  if [ "$syms" != "sx_plugin_entry" ]; then
    echo "FAIL $so exports: $(echo $syms)"
    status=1
  else
    echo "ok   $so exports only sx_plugin_entry"
  fi
done
[ "$count" -gt 0 ] || { echo "FAIL no plugins in $dir"; exit 1; }
exit $status
