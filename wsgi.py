"""WSGI entry point: `flask --app wsgi ...`, `gunicorn wsgi:app` (deploy/, docs/deployment.md).

PORTAL_CONFIG=production selects portal.config.ProductionConfig; unset, the
development configuration of `make run`.
"""
from portal import create_app
from portal.config import DevelopmentConfig, config_from_environment

app = create_app(config_from_environment(DevelopmentConfig))
