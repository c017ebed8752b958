// CBLAS and OpenBLAS's thread controls (openblas_set_num_threads lives in cblas.h).
#include <cblas.h>
