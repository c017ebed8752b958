// Model module: see README.
