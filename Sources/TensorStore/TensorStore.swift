// TensorStore module: see README.
