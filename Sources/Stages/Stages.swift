// Stages module: see README.
