// Training module: see README.
