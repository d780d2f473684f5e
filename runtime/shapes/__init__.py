"""Statistical shape models built from training shapes (LGCN's PCA model)."""
