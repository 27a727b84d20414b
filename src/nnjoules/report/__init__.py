"""Presentation of estimates: tables, CSV, HTML, plots, comparisons and sweep results.

Everything here reads the model's results (:mod:`nnjoules.energy.results`); nothing in
the model imports this package except `nnjoules.energy.estimate`, which returns the
`energy_report.EnergyReport` façade.
"""
