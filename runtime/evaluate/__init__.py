"""`netspec eval`: from a trained run to numbers (NME, FR, AUC) and CED plots."""
