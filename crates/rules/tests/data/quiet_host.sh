#!/bin/sh
# Routine activity of a quiet host, recorded by record.py as quiet_host.jsonl: an operator's
# look around and the daily cron jobs Debian ships (dpkg database backup, man-db).
ps aux >/dev/null
df -h >/dev/null
uptime >/dev/null
ls -la /etc >/dev/null
cat /etc/os-release >/dev/null
ss -tan >/dev/null
ip addr >/dev/null
id >/dev/null
run-parts --report --regex '^(dpkg|man-db)$' /etc/cron.daily
