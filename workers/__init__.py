"""Background processes: broker setup, actors and the scheduler."""
