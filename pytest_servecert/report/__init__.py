"""Outputs of a run: the certificate JSON (and, later, the HTML report and snapshots)."""
