// CBLAS and OpenBLAS's thread controls (openblas_set_num_threads lives in cblas.h).
#include <cblas.h>

/* LAPACK's symmetric eigensolver, which libopenblas carries (Fortran calling convention; Debian
   ships no lapacke.h beside OpenBLAS's cblas.h, so it is declared here). */
void dsyev_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
            double *work, const int *lwork, int *info);
