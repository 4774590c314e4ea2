"""X-Forwarded-For and X-Forwarded-Proto, believed only from the reverse proxies named in
TRUSTED_PROXIES. Werkzeug's ProxyFix trusts the headers of whoever connects; behind a
proxy that is right, but a portal also reachable directly would let any client choose
the address that the sign-in throttle and the login audit see. So ProxyFix runs only for
requests whose peer address is one of the trusted proxies."""
from __future__ import annotations

import ipaddress

from werkzeug.middleware.proxy_fix import ProxyFix


def parse_networks(text: str) -> list:
    """'10.0.0.5, 192.0.2.0/24, ::1' -> networks; a typo is an error at start-up, not a hole."""
    networks = []
    for item in (part.strip() for part in text.split(",")):
        if item:
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ValueError(f"TRUSTED_PROXIES: {item!r} is not an IP address or network") from None
    return networks


class TrustedProxyFix:
    def __init__(self, app, networks: list, x_for: int = 1, x_proto: int = 1):
        self.app = app
        self.networks = networks
        self.fixed = ProxyFix(app, x_for=x_for, x_proto=x_proto, x_host=0, x_port=0, x_prefix=0)

    def _trusted(self, peer: str | None) -> bool:
        try:
            address = ipaddress.ip_address(peer or "")
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    def __call__(self, environ, start_response):
        if self._trusted(environ.get("REMOTE_ADDR")):
            return self.fixed(environ, start_response)
        return self.app(environ, start_response)


def install(app) -> None:
    networks = parse_networks(app.config.get("TRUSTED_PROXIES") or "")
    if networks:
        app.wsgi_app = TrustedProxyFix(app.wsgi_app, networks, x_for=app.config["PROXY_FIX_X_FOR"],
                                       x_proto=app.config["PROXY_FIX_X_PROTO"])
