/* cuda_probe.c - what a cuda step will find on this machine, before one runs
 * (bench/on-device.sh's first stage): the CUDA driver (libcuda.so.1, its
 * version, each device's name, compute capability, SMs and memory) and
 * cuBLASLt, searched exactly as the step's shim searches it
 * (codegen/cuda_step/cuda_libs.c). Links nothing CUDA: everything is
 * dlopened, so it runs (and says what is missing) anywhere.
 * Prints "key: value" lines. Exit 0 if the driver, a device and cuBLASLt
 * were all found, 1 otherwise. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <cuda.h>

#include "cuda_libs.h"

typedef CUresult (*fn_i)(unsigned);
typedef CUresult (*fn_pi)(int *);
typedef CUresult (*fn_get)(CUdevice *, int);
typedef CUresult (*fn_name)(char *, int, CUdevice);
typedef CUresult (*fn_attr)(int *, CUdevice_attribute, CUdevice);
typedef CUresult (*fn_mem)(size_t *, CUdevice);
typedef size_t (*fn_ver)(void);

static int probe_driver(void) {
  void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    printf("driver: cannot load libcuda.so.1 (%s)\n", dlerror());
    return 1;
  }
  fn_i init = (fn_i)dlsym(h, "cuInit");
  fn_pi version = (fn_pi)dlsym(h, "cuDriverGetVersion"), count = (fn_pi)dlsym(h, "cuDeviceGetCount");
  fn_get get = (fn_get)dlsym(h, "cuDeviceGet");
  fn_name name = (fn_name)dlsym(h, "cuDeviceGetName");
  fn_attr attr = (fn_attr)dlsym(h, "cuDeviceGetAttribute");
  fn_mem mem = (fn_mem)dlsym(h, "cuDeviceTotalMem_v2");
  if (!init || !version || !count || !get || !name || !attr || !mem) {
    printf("driver: libcuda.so.1 lacks a basic entry point (cuInit .. cuDeviceTotalMem_v2)\n");
    return 1;
  }
  int v = 0, n = 0;
  version(&v);
  printf("driver: libcuda.so.1, CUDA %d.%d\n", v / 1000, v % 1000 / 10);
  CUresult r = init(0);
  if (r != CUDA_SUCCESS || count(&n) != CUDA_SUCCESS || n == 0) {
    printf("devices: none (cuInit %d, %d devices)\n", (int)r, n);
    return 1;
  }
  for (int i = 0; i < n; i++) {
    CUdevice d;
    char nm[256] = "?";
    int major = 0, minor = 0, sms = 0;
    size_t bytes = 0;
    get(&d, i);
    name(nm, sizeof nm, d);
    attr(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, d);
    attr(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, d);
    attr(&sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, d);
    mem(&bytes, d);
    printf("device %d: %s, sm_%d%d, %d SMs, %zu MiB\n", i, nm, major, minor, sms, bytes >> 20);
  }
  return 0;
}

static int probe_cublaslt(void) {
  char found[PATH_MAX], tried[4096];
  cram_cuda_search s = cram_cuda_search_from_env();
  void *h = cram_cuda_open_lib(&s, &cram_cuda_lib_cublaslt, found, sizeof found, tried, sizeof tried);
  if (!h) {
    printf("cuBLASLt: not found; looked in: %s\n", tried);
    return 1;
  }
  fn_ver ver = (fn_ver)dlsym(h, "cublasLtGetVersion");
  printf("cuBLASLt: %s, version %zu\n", found, ver ? ver() : (size_t)0);
  return 0;
}

int main(int argc, char **argv) {
  (void)argv;
  if (argc != 1) {
    fprintf(stderr, "usage: cuda_probe (no arguments; see the file's comment)\n");
    return 2;
  }
  int bad = probe_cublaslt();
  bad |= probe_driver();
  return bad ? 1 : 0;
}
