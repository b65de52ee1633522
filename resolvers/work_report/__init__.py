"""The semi-annual work report (每半年报送工作情况总结, seed 003): the counts of its Annex 1, computed
from the members' sources for a period (counts.py), and the office's report for a half year, drafted,
submitted and read by the provincial office (report.py)."""
