/* fake_lib.c - a loadable stand-in for a CUDA library in test_cuda_libs:
 * copied under each fake install's folder, so which copy got loaded shows
 * which place the search picked. */
int cram_fake_lib_marker(void);
int cram_fake_lib_marker(void) { return 42; }
