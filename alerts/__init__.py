"""Anomalies to tickets: merging, grids and routing, lifecycle, SLA and escalation, duty queues, store, KPIs."""
