"""Unit tests of the harness's own logic: python3 -m unittest discover -s bench/tests"""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from harness import report, scenario, stats, yamlout  # noqa: E402


class Stats(unittest.TestCase):
    def test_mwu_exact_matches_tables(self):
        # values as scipy.stats.mannwhitneyu(method="exact") gives them
        self.assertAlmostEqual(stats.mann_whitney_u([1, 2, 3], [4, 5, 6])[1], 0.1)
        self.assertAlmostEqual(stats.mann_whitney_u([1, 2, 3, 4, 5], [6, 7, 8, 9, 10])[1],
                               2 / 252)
        u, p, r, method = stats.mann_whitney_u([10, 11, 12, 13, 14, 15], [1, 2, 3, 4, 5, 16])
        self.assertEqual((u, method), (30.0, "exact"))
        self.assertAlmostEqual(p, 0.064935, places=5)
        self.assertAlmostEqual(r, 2 / 3)

    def test_mwu_identical_samples(self):
        self.assertEqual(stats.mann_whitney_u([5, 5, 5], [5, 5, 5])[1], 1.0)

    def test_bootstrap_ci_brackets_median(self):
        lo, hi = stats.bootstrap_ci([0.9, 0.95, 1.0, 1.05, 1.1])
        self.assertLessEqual(lo, 1.0)
        self.assertGreaterEqual(hi, 1.0)


class Report(unittest.TestCase):
    def run_(self, target, rnd, rps, valid=True):
        return {"scenario": "s", "target": target, "conns": 50, "round": rnd, "valid": valid,
                "errors": [] if valid else ["boom"], "rps": rps, "cpu_us_per_req": 1e6 / rps,
                "p50": 1, "p90": 2, "p99": 3, "p999": 4, "rss_kb": 1024}

    def test_ratio_is_within_round(self):
        res = [self.run_("nginx", 0, 100), self.run_("gatehouse", 0, 110),
               self.run_("nginx", 1, 50), self.run_("gatehouse", 1, 55),
               self.run_("nginx", 2, 80), self.run_("gatehouse", 2, 1, valid=False)]
        agg = report.aggregate(res)[("s", 50)]
        self.assertAlmostEqual(agg["gatehouse"]["ratio"], 1.1)
        self.assertEqual(agg["gatehouse"]["valid"], 2)

    def test_compare_flags_regression(self):
        res = []
        for r in range(6):
            res += [self.run_("gatehouse", r, 80 + r), self.run_("gatehouse-ref", r, 100 + r)]
        lines, regression = report.compare(report.aggregate(res), "gatehouse", "gatehouse-ref",
                                           0.05, 0.02)
        self.assertTrue(regression, "\n".join(lines))


class Scenarios(unittest.TestCase):
    def test_all_scenarios_generate_config(self):
        for name in scenario.list_names():
            sc = scenario.load(name)
            doc = sc.kong_config("http://127.0.0.1:9")
            self.assertEqual(doc["_format_version"], "3.0")
            self.assertTrue(yamlout.dump(doc).startswith("_format_version"))
            self.assertTrue(sc.path.startswith("/"))


if __name__ == "__main__":
    unittest.main()
