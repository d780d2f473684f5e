"""`netspec fit`: from a spec and data to a run directory (model, losses, targets, loop)."""
