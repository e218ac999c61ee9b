"""Tests for launch/slurm_hosts.py: host lists and task layouts in Slurm's
order (checked against `scontrol show hostnames` of Slurm 22.05). No Slurm
needed."""

import unittest

from launch import slurm_hosts


class ExpandHostlistTest(unittest.TestCase):
    def test_order_is_slurms_not_sorted(self):
        # Sorted as strings node10 would come first; Slurm ranks node9 first.
        cases = {
            "node[9-10]": ["node9", "node10"],
            "a[1-2],b3": ["a1", "a2", "b3"],
            "n[9-10],a1": ["n9", "n10", "a1"],
            "n[8-11]": ["n8", "n9", "n10", "n11"],
            "gpu[07-08,10]": ["gpu07", "gpu08", "gpu10"],
            "g[007-010]": ["g007", "g008", "g009", "g010"],
            "r[1-2]-n[01-02]": ["r1-n01", "r1-n02", "r2-n01", "r2-n02"],
            "h[1-2][1-2]": ["h11", "h12", "h21", "h22"],
            "localhost": ["localhost"],
            "b,a,b": ["b", "a", "b"],
        }
        for text, hosts in cases.items():
            with self.subTest(text=text):
                self.assertEqual(slurm_hosts.expand_hostlist(text), hosts)

    def test_bad_lists_are_refused_naming_them(self):
        for text in ("node[1-", "node]1[", "node[a-b]", "node[3-1]", "a,,b", "n[1-2"):
            with self.subTest(text=text):
                with self.assertRaisesRegex(ValueError, "is not a Slurm host list") as c:
                    slurm_hosts.expand_hostlist(text)
                self.assertIn(repr(text), str(c.exception))


class StepTasksTest(unittest.TestCase):
    def test_tasks_per_node_runs(self):
        self.assertEqual(slurm_hosts.expand_tasks_per_node("2(x3),1"), [2, 2, 2, 1])
        self.assertEqual(slurm_hosts.expand_tasks_per_node("4"), [4])
        with self.assertRaisesRegex(ValueError, "'2x3' is not a Slurm task"):
            slurm_hosts.expand_tasks_per_node("2x3")

    def test_block_distribution_by_rank(self):
        self.assertEqual(
            slurm_hosts.step_tasks("node[9-10]", "2(x2)"),
            [("node9", 0), ("node9", 1), ("node10", 0), ("node10", 1)],
        )
        self.assertEqual(
            slurm_hosts.step_tasks("a[1-2],b3", "1,2,1"),
            [("a1", 0), ("a2", 0), ("a2", 1), ("b3", 0)],
        )
        with self.assertRaisesRegex(ValueError, "names 2 nodes but"):
            slurm_hosts.step_tasks("node[9-10]", "1")


if __name__ == "__main__":
    unittest.main()
