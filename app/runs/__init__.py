"""Background runs: state, progress and outcome of long-running work, for whoever started it."""
