"""Same-day anomalies: pure rules (``detectors``), the daily rows they read (``daily``) and the
incidents, mutes and notification ledger they feed (``incidents``). docs/anomalies.md states
every rule."""
