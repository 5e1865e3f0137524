"""Scenario files: bench/scenarios/<name>.py. See bench/README.md for the fields."""
import importlib.util
import os

SCENARIO_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scenarios")


class Scenario:
    def __init__(self, name, module):
        self.name = name
        self.module = module
        self.description = getattr(module, "DESCRIPTION", "")
        self.path = getattr(module, "PATH", "/bench")
        self.headers = dict(getattr(module, "HEADERS", {}))
        self.needs_issue = getattr(module, "NEEDS_ISSUE", None)
        self.nginx_location_extra = getattr(module, "NGINX_LOCATION_EXTRA", "")
        self.gatehouse_settings = dict(getattr(module, "GATEHOUSE_SETTINGS", {}))
        self.targets = getattr(module, "TARGETS", None)  # None = all selected targets
        self.before_load = getattr(module, "before_load", None)  # fn(ctx) -> [errors], before warm-up
        self.during_load = getattr(module, "during_load", None)  # fn(ctx, stop_event) -> [errors]
        self.probe = getattr(module, "probe", None)  # fn(ctx) -> None | error (Gatehouse preflight)
        # GOAL: the target from the issues, for the standing table. metric is one of
        # rps_x_nginx (within-round ratio), rps_x_scenario / p99_x_scenario (vs scenario "vs",
        # same run, gatehouse only); "min" or "max" is the bound.
        self.goal = getattr(module, "GOAL", None)
        # TLS = True: every target terminates TLS (HTTP/1.1 and h2 by ALPN) with the same ECDSA
        # P-256 certificate; LOAD picks the load generator: "wrk" (HTTP/1.1) or "h2load" (h2).
        self.tls = bool(getattr(module, "TLS", False))
        self.load = getattr(module, "LOAD", "wrk")
        self.kong_config = module.kong_config


def list_names():
    names = [f[:-3] for f in os.listdir(SCENARIO_DIR) if f.endswith(".py") and not f.startswith("_")]
    return sorted(names, key=lambda n: (n != "no-plugins-1-route", n))  # the baseline first


def load(name):
    path = os.path.join(SCENARIO_DIR, name + ".py")
    if not os.path.exists(path):
        raise SystemExit(f"unknown scenario {name!r}; available: {', '.join(list_names())}")
    spec = importlib.util.spec_from_file_location("scenario_" + name.replace("-", "_"), path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return Scenario(name, mod)
