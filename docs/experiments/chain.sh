#!/bin/bash
# usage: chain.sh SPEC MEMBER LOG [-p k=v ...]: every evaluation of one sweep member, in order.
# STREAMLINE (the binary) and CACHE (the cache folder) may be set; the runs here used /work/exp/cache.
spec=$1; member=$2; log=$3; shift 3
for t in noft_plays noft_python noft_wiki ft_plays ft_python ft_wiki; do
  "${STREAMLINE:-streamline}" run -s "$spec" --cache "${CACHE:-.streamline-cache}" --threads 1 --quiet "$@" "$t[$member]" >> $log 2>&1
done
echo CHAIN DONE >> $log
