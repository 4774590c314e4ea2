"""gunicorn settings of the portal (deploy/billing-portal.service; docs/deployment.md).

    gunicorn -c deploy/gunicorn.conf.py wsgi:app

nginx terminates TLS and proxies to 127.0.0.1:8000. The scheduler is not in here: it
runs as billing-scheduler.service, so adding workers never runs a job twice.
"""
import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# Pages are short database round trips; two workers per core keeps both busy.
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() * 2 + 1))
worker_class = "sync"
# CSV exports stream for a while; nginx's proxy_read_timeout is 300 s as well.
timeout = 300
graceful_timeout = 60
keepalive = 5
# No max_requests: a rate deck import runs in a thread of the worker that received it.
accesslog = "-"
errorlog = "-"
loglevel = "info"
# nginx on the same host: trust its X-Forwarded-Proto (the app's ProxyFix handles the rest).
forwarded_allow_ips = "127.0.0.1,::1"
proc_name = "billing-portal"
