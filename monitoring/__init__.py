"""Request log, latency/cost/error metrics, drift detection and alerts."""
