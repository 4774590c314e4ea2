"""WSGI entry point: `flask --app wsgi ...`, `gunicorn wsgi:app` (deploy/, docs/deployment.md).

PORTAL_CONFIG=production selects portal.config.ProductionConfig; unset, portal.config.Config
(`make run`). Both need SECRET_KEY in the environment.
"""
from portal import create_app
from portal.config import Config, config_from_environment

app = create_app(config_from_environment(Config))
