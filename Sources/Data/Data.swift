// Data module: see README.
