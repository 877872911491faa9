"""The commands (fit, predict, compare) and what they read and write (checkpoints, the run report)."""
