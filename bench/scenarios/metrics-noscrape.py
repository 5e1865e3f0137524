"""metrics-scrape without the scraping: the same 10,000 routes, prometheus plugin and warmed
series, so p99 here is the baseline the scrape's p99 is compared with (issue 7)."""
from harness import scenario as _scenario

_scrape = _scenario.load("metrics-scrape").module

DESCRIPTION = "10,000 routes + prometheus (~100k series), not scraped: metrics-scrape's baseline"
PATH = _scrape.PATH


def kong_config(upstream_url):
    return _scrape.kong_config(upstream_url)


def before_load(ctx):
    return _scrape.before_load(ctx)
