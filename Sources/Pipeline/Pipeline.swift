// Pipeline module: see README.
