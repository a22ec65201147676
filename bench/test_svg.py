"""Unit tests of bench/svg.py, the timeline picture of the rolling-upgrade benchmark:
`python3 -m unittest bench/test_svg.py` (standard library only)."""

import os
import sys
import unittest
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import svg  # noqa: E402  (the module beside this file)

NS = "{http://www.w3.org/2000/svg}"


def parse(text):
    return ET.fromstring(text)


class ScaleTest(unittest.TestCase):
    def test_maps_the_ends_and_the_middle_linearly(self):
        scale = svg.Scale(10, 20, 100, 200)
        self.assertEqual(scale(10), 100)
        self.assertEqual(scale(20), 200)
        self.assertEqual(scale(15), 150)

    def test_an_inverted_output_range_puts_larger_values_higher_up(self):
        scale = svg.Scale(0, 4, 90, 10)  # a chart's y: 0 at the bottom
        self.assertEqual(scale(0), 90)
        self.assertEqual(scale(4), 10)

    def test_an_empty_input_range_does_not_divide_by_zero(self):
        self.assertEqual(svg.Scale(3, 3, 5, 50)(3), 5)


class NiceCeilingTest(unittest.TestCase):
    def test_rounds_up_to_one_two_or_five_times_a_power_of_ten(self):
        cases = {0.3: 0.5, 1: 1, 1.01: 2, 2: 2, 2.5: 5, 7: 10, 99: 100, 120: 200, 3000: 5000}
        for value, expected in cases.items():
            with self.subTest(value=value):
                self.assertEqual(svg.nice_ceiling(value), expected)

    def test_nothing_to_show_still_gives_an_axis(self):
        self.assertEqual(svg.nice_ceiling(0), 1)
        self.assertEqual(svg.nice_ceiling(-5), 1)


class TicksTest(unittest.TestCase):
    def test_ticks_are_round_and_cover_the_span(self):
        self.assertEqual(svg.ticks(100), [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100])
        self.assertEqual(svg.ticks(7), [0, 1, 2, 3, 4, 5, 6, 7])
        self.assertEqual(svg.ticks(0.5), [0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5])


class TimelineTest(unittest.TestCase):
    def setUp(self):
        self.lanes = [("node1", [(100, 101, "drain"), (101, 103, "swap")]),
                      ("node2", [(103, 104, "drain")])]
        self.charts = [("req/s", "req/s", "#000", [(100, 300), (101, 310), (102, 290)]),
                       ("failed/s", "req/s", "#f00", [])]

    def test_is_well_formed_svg_with_one_bar_per_step(self):
        root = parse(svg.timeline("ugw", self.lanes, self.charts, 100, 110))
        self.assertEqual(root.tag, NS + "svg")
        bars = [r for r in root.iter(NS + "rect") if r.find(NS + "title") is not None]
        self.assertEqual(len(bars), 3)
        titles = [b.find(NS + "title").text for b in bars]
        self.assertEqual(titles[1], "swap: 1.00-3.00 s (2.00 s)")

    def test_bars_sit_where_their_times_are_on_the_shared_axis(self):
        root = parse(svg.timeline("ugw", self.lanes, self.charts, 100, 110))
        bars = [r for r in root.iter(NS + "rect") if r.find(NS + "title") is not None]
        x = svg.Scale(100, 110, svg.LEFT, svg.WIDTH - svg.RIGHT)
        swap = bars[1]
        self.assertAlmostEqual(float(swap.get("x")), x(101), places=1)
        self.assertAlmostEqual(float(swap.get("width")), x(103) - x(101), places=1)
        self.assertEqual(swap.get("fill"), svg.STEP_COLOURS["swap"])
        # The second node's lane is below the first one.
        self.assertGreater(float(bars[2].get("y")), float(bars[0].get("y")))

    def test_a_bar_outside_the_axis_is_clipped_to_it(self):
        lanes = [("n", [(95, 120, "wait")])]
        root = parse(svg.timeline("t", lanes, [], 100, 110))
        bar = next(r for r in root.iter(NS + "rect") if r.find(NS + "title") is not None)
        self.assertAlmostEqual(float(bar.get("x")), svg.LEFT, places=1)
        self.assertAlmostEqual(float(bar.get("x")) + float(bar.get("width")), svg.WIDTH - svg.RIGHT, places=1)

    def test_each_series_is_one_polyline_and_an_empty_one_none(self):
        root = parse(svg.timeline("ugw", self.lanes, self.charts, 100, 110))
        lines = list(root.iter(NS + "polyline"))
        self.assertEqual(len(lines), 1)
        self.assertEqual(len(lines[0].get("points").split()), 3)

    def test_labels_are_escaped(self):
        lanes = [("<node & 1>", [(0, 1, "a<b")])]
        text = svg.timeline('"quoted" & <b>', lanes, [], 0, 1)
        root = parse(text)  # would raise on a raw < or &
        self.assertIn("<node & 1>", [t.text for t in root.iter(NS + "text")])

    def test_the_legend_names_each_kind_of_step_once(self):
        root = parse(svg.timeline("ugw", self.lanes, self.charts, 100, 110))
        texts = [t.text for t in root.iter(NS + "text")]
        self.assertEqual(texts.count("drain"), 1)
        self.assertEqual(texts.count("swap"), 1)


if __name__ == "__main__":
    unittest.main()
