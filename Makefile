# The two commands of the README. Both do all set-up on a fresh Debian machine.
.PHONY: run test bench-route bench-cdr bench-portal bench-callgrind bench-switch bench-quotas

run:   ## start the portal with demo data on http://127.0.0.1:5000
	./scripts/run.sh

test:  ## run the whole test suite
	./scripts/test.sh

bench-route:
	.venv/bin/python bench/route.py

bench-cdr:
	.venv/bin/python bench/cdr.py

bench-portal:
	.venv/bin/python bench/portal.py

bench-callgrind:  ## instructions per route_call and per CDR (needs valgrind; run bench-route first)
	.venv/bin/python bench/callgrind.py

bench-switch:  ## calls per second through the real FreeSWITCH (run make test once first: it installs it)
	FREESWITCH_PREFIX=$${FREESWITCH_PREFIX:-/opt/freeswitch} .venv/bin/python bench/switch.py

bench-quotas:  ## credit in quotas: simultaneous calls, 50 connections re-authorizing 10,000 calls
	.venv/bin/python bench/quotas.py
