"""Outcomes of the router's own traffic (docs/services/outcomes.md).

- `sampling` (pure): which answered requests are shadow-evaluated, and against which target;
- `judge` (pure): the judge's prompt, reading its replies, combining the two orders;
- `outcomes` (pure): local_ok / frontier_ok from verdicts and feedback, the quality estimate;
- `calibration` (pure): the threshold for a frontier share or a quality target;
- `evaluator`: `ShadowEvaluator`, the bounded queue and workers that run shadow and judge calls
  off the request path, within their own daily budget, and write the results to the ledger.
"""
