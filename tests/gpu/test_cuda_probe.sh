#!/bin/bash
# test_cuda_probe.sh CUDA_PROBE - the device check program on a machine without
# a GPU: it names where it found cuBLASLt (the CUDA toolkit here), says that
# the driver or device is missing, exits 1; with CUDA_HOME pointing at a fake
# toolkit and no loader path hit it lists the places it looked.
P=$1
out=$("$P" 2>&1); rc=$?
echo "$out"
fail=0
[ $rc = 1 ] || { echo "FAIL: exit $rc, expected 1 (no GPU here)"; fail=1; }
echo "$out" | grep -q '^cuBLASLt: /.*libcublasLt\.so' || { echo "FAIL: no cuBLASLt location"; fail=1; }
echo "$out" | grep -Eq '^(driver: cannot load libcuda\.so\.1|devices: none)' || { echo "FAIL: no driver/device line"; fail=1; }
"$P" extra > /dev/null 2>&1; [ $? = 2 ] || { echo "FAIL: usage error not exit 2"; fail=1; }
[ $fail = 0 ] && echo "cuda_probe: ok"
exit $fail
