// layernorm.cu - residual add + LayerNorm forward, LayerNorm backward.
// Shapes: bert_crammed at microbatch 256: N = 256 x 128 = 32768 rows of H = 768.
//
//   forward  v1  cramc's add_layernorm kernel today (cr_layernorm, codegen/cuda_kernels/norm.cuh):
//                warp per row, f32, three passes over xa + xb (mean, variance, write);
//                the residual sum itself is not written (another kernel does that)
//            v2  warp per row with the row in registers (H/32 floats a lane, float4
//                loads), one read of xa and xb, writes the residual sum AND the
//                normalised row (llm.c fused_residual_forward5's fusion)
//   backward v1  cramc's layernorm_grad kernel today (cr_layernorm_grad): warp per row,
//                recomputes mean/rstd, writes dx only (dw, db are separate sum_to
//                reductions in the generated step)
//            v2  dx + dw + db in one kernel: row in registers, per-block partial
//                sums of dw/db in shared memory, one atomicAdd per column per block
//   dw, db   v3  cramc's layernorm_wgrad + layernorm_bgrad pair today
//                (cr_layernorm_param_partials + cr_layernorm_param_final): 264 blocks
//                sum their rows' dy * xhat and dy per column into partials (row
//                statistics a warp per row in shared memory, then one thread a
//                column: coalesced, no atomics), a second launch sums the partials
//                in block order (the same sums every run); apart from dx
//   backward v4  cramc's layernorm_grad + its layernorm_wgrad/bgrad when the partition
//                joined them (cr_layernorm_grad_params + cr_layernorm_param_final, what
//                bert_crammed's step runs): dx a warp per row as v1, each lane keeping
//                its columns' dw/db sums in registers over the block's rows, the
//                block's warps adding them in shared memory in turn, then the same
//                final pass as v3: one read of x and dy for all three
// Bandwidth is counted from each version's own compulsory traffic (bytes it must
// read and write once), so v2's extra output counts for it.
//
// build: make -C bench/kernels   run: ./layernorm [version] [repeats]
#include "common.h"

static const int N = 32768, H = 768;
static const float EPS = 1e-12f;

// ---- CPU reference (double) -----------------------------------------------------------
static void ln_fwd_ref(const float *xa, const float *xb, const float *w, const float *b, float *res, float *out) {
  for (int r = 0; r < N; r++) {
    const float *a = xa + (size_t)r * H, *c = xb + (size_t)r * H;
    double s = 0, q = 0;
    for (int j = 0; j < H; j++) s += (double)(a[j] + c[j]);
    double mean = s / H;
    for (int j = 0; j < H; j++) q += ((a[j] + c[j]) - mean) * ((a[j] + c[j]) - mean);
    double rstd = 1.0 / sqrt(q / H + EPS);
    for (int j = 0; j < H; j++) {
      res[(size_t)r * H + j] = a[j] + c[j];
      out[(size_t)r * H + j] = (float)(((a[j] + c[j]) - mean) * rstd * w[j] + b[j]);
    }
  }
}
static void ln_bwd_ref(const float *x, const float *w, const float *dy, float *dx, float *dw, float *db) {
  std::vector<double> gw(H, 0.0), gb(H, 0.0);
  for (int r = 0; r < N; r++) {
    const float *xr = x + (size_t)r * H, *d = dy + (size_t)r * H;
    double s = 0, q = 0;
    for (int j = 0; j < H; j++) s += xr[j];
    double mean = s / H;
    for (int j = 0; j < H; j++) q += (xr[j] - mean) * (xr[j] - mean);
    double rstd = 1.0 / sqrt(q / H + EPS), mg = 0, mgx = 0;
    for (int j = 0; j < H; j++) {
      double xh = (xr[j] - mean) * rstd, g = (double)d[j] * w[j];
      mg += g, mgx += g * xh;
      gw[j] += d[j] * xh, gb[j] += d[j];
    }
    mg /= H, mgx /= H;
    for (int j = 0; j < H; j++) dx[(size_t)r * H + j] = (float)(rstd * ((double)d[j] * w[j] - mg - (xr[j] - mean) * rstd * mgx));
  }
  for (int j = 0; j < H; j++) dw[j] = (float)gw[j], db[j] = (float)gb[j];
}

// ---- v1: the generated kernels ------------------------------------------------------------
__global__ void add_ln_fwd_v1(float *o, const float *x0, const float *x1, const float *x2, const float *x3) {
  cr_layernorm<true, true, true>(o, x0, x1, x2, x3, N, H, EPS);
}
__global__ void ln_bwd_v1(float *o, const float *x0, const float *x1, const float *x2) {
  cr_layernorm_grad<true, false>(o, x0, x1, x2, (const float *)0, N, H, EPS);
}

// layernorm_wgrad + layernorm_bgrad as render_cuda.c launches them at N rows
static const int PG_BLOCKS = N / 64 < 264 ? N / 64 : 264; // render_cuda.c: at most 264 blocks, >= 64 rows each
static const long long PG_ROWS = (N + PG_BLOCKS - 1) / PG_BLOCKS;
__global__ void ln_pgrad_partials_v3(const float *x, const float *dy, char *T) {
  cr_layernorm_param_partials<true>(x, dy, N, H, EPS, PG_ROWS, T);
}
__global__ void ln_pgrad_final_v3(float *dw, float *db, const char *T) { cr_layernorm_param_final(dw, db, H, PG_BLOCKS, T); }
// the fused backward as render_cuda.c launches it: at most 528 blocks of >= 32 rows, H / 32 columns a lane
static const int GP_BLOCKS = N / 32 < 528 ? N / 32 : 528;
static const long long GP_ROWS = (N + GP_BLOCKS - 1) / GP_BLOCKS;
__global__ void ln_bwd_params_v4(float *o, const float *x, const float *w, const float *dy, char *T) {
  cr_layernorm_grad_params<H / 32, true, false, true, false>(o, x, w, dy, (const float *)0, N, H, EPS, (float *)0, GP_ROWS, T);
}
__global__ void ln_bwd_final_v4(float *dw, float *db, const char *T) { cr_layernorm_param_final(dw, db, H, GP_BLOCKS, T); }

// ---- v2 -------------------------------------------------------------------------------------
// Lane l owns columns 4 (l + 32 k) .. +3, k < H/128: coalesced float4 accesses.
static const int V4 = H / 128;
static_assert(H % 128 == 0, "v2 keeps H/128 float4 a lane");

__global__ void add_ln_fwd_v2(float *res, float *out, const float *xa, const float *xb, const float *w, const float *b) {
  const long long r = (long long)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
  const int lane = threadIdx.x & 31;
  if (r >= N) return;
  const float4 *a4 = (const float4 *)(xa + r * H), *b4 = (const float4 *)(xb + r * H);
  float4 v[V4];
  float s = 0.f;
#pragma unroll
  for (int k = 0; k < V4; k++) {
    const float4 p = a4[lane + 32 * k], q = b4[lane + 32 * k];
    v[k] = make_float4(p.x + q.x, p.y + q.y, p.z + q.z, p.w + q.w);
    s += v[k].x + v[k].y + v[k].z + v[k].w;
  }
  const float mean = cr_warp_sum(s) / (float)H;
  float q = 0.f;
#pragma unroll
  for (int k = 0; k < V4; k++) {
    const float dx = v[k].x - mean, dy = v[k].y - mean, dz = v[k].z - mean, dw = v[k].w - mean;
    q += dx * dx + dy * dy + dz * dz + dw * dw;
  }
  const float rstd = rsqrtf(cr_warp_sum(q) / (float)H + EPS);
  float4 *r4 = (float4 *)(res + r * H), *o4 = (float4 *)(out + r * H);
  const float4 *w4 = (const float4 *)w, *bb4 = (const float4 *)b;
#pragma unroll
  for (int k = 0; k < V4; k++) {
    const int c = lane + 32 * k;
    const float4 ww = w4[c], bb = bb4[c];
    r4[c] = v[k];
    o4[c] = make_float4((v[k].x - mean) * rstd * ww.x + bb.x, (v[k].y - mean) * rstd * ww.y + bb.y,
                        (v[k].z - mean) * rstd * ww.z + bb.z, (v[k].w - mean) * rstd * ww.w + bb.w);
  }
}

// dx per row as v1; dw += dy * xhat and db += dy summed over the block's rows in
// registers, then across the block's warps in shared memory, then one atomicAdd a column.
__global__ void ln_bwd_v2(float *dx, float *dw, float *db, const float *x, const float *w, const float *dy) {
  __shared__ float sw[CR_BLOCK / 32][H], sb[CR_BLOCK / 32][H];
  const int lane = threadIdx.x & 31, wid = threadIdx.x / 32, nw = blockDim.x / 32;
  float aw[V4][4], ab[V4][4];
#pragma unroll
  for (int k = 0; k < V4; k++)
    for (int i = 0; i < 4; i++) aw[k][i] = ab[k][i] = 0.f;
  const float4 *w4 = (const float4 *)w;
  for (long long r = (long long)blockIdx.x * nw + wid; r < N; r += (long long)gridDim.x * nw) {
    const float4 *x4 = (const float4 *)(x + r * H), *d4 = (const float4 *)(dy + r * H);
    float xv[V4][4], dv[V4][4];
    float s = 0.f;
#pragma unroll
    for (int k = 0; k < V4; k++) {
      const float4 p = x4[lane + 32 * k], g = d4[lane + 32 * k];
      xv[k][0] = p.x, xv[k][1] = p.y, xv[k][2] = p.z, xv[k][3] = p.w;
      dv[k][0] = g.x, dv[k][1] = g.y, dv[k][2] = g.z, dv[k][3] = g.w;
      s += p.x + p.y + p.z + p.w;
    }
    const float mean = cr_warp_sum(s) / (float)H;
    float q = 0.f;
#pragma unroll
    for (int k = 0; k < V4; k++)
      for (int i = 0; i < 4; i++) q += (xv[k][i] - mean) * (xv[k][i] - mean);
    const float rstd = rsqrtf(cr_warp_sum(q) / (float)H + EPS);
    float mg = 0.f, mgx = 0.f;
#pragma unroll
    for (int k = 0; k < V4; k++) {
      const float4 ww = w4[lane + 32 * k];
      const float wv[4] = { ww.x, ww.y, ww.z, ww.w };
      for (int i = 0; i < 4; i++) {
        const float xh = (xv[k][i] - mean) * rstd, g = dv[k][i] * wv[i];
        mg += g, mgx += g * xh;
        aw[k][i] += dv[k][i] * xh, ab[k][i] += dv[k][i];
        xv[k][i] = xh, dv[k][i] = g; // keep xhat and dy*w for the write below
      }
    }
    mg = cr_warp_sum(mg) / (float)H, mgx = cr_warp_sum(mgx) / (float)H;
    float4 *o4 = (float4 *)(dx + r * H);
#pragma unroll
    for (int k = 0; k < V4; k++)
      o4[lane + 32 * k] = make_float4(rstd * (dv[k][0] - mg - xv[k][0] * mgx), rstd * (dv[k][1] - mg - xv[k][1] * mgx),
                                      rstd * (dv[k][2] - mg - xv[k][2] * mgx), rstd * (dv[k][3] - mg - xv[k][3] * mgx));
  }
#pragma unroll
  for (int k = 0; k < V4; k++)
    for (int i = 0; i < 4; i++) sw[wid][4 * (lane + 32 * k) + i] = aw[k][i], sb[wid][4 * (lane + 32 * k) + i] = ab[k][i];
  __syncthreads();
  for (int c = threadIdx.x; c < H; c += blockDim.x) {
    float tw = 0.f, tb = 0.f;
    for (int u = 0; u < nw; u++) tw += sw[u][c], tb += sb[u][c];
    atomicAdd(dw + c, tw);
    atomicAdd(db + c, tb);
  }
}

int main(int argc, char **argv) {
  LabArgs args = lab_args(argc, argv, 4, "layernorm");
  const size_t NH = (size_t)N * H;
  std::vector<float> xa = rand_vec(NH, 1, -2.f, 2.f), xb = rand_vec(NH, 2), w = rand_vec(H, 3, 0.5f, 1.5f),
                     b = rand_vec(H, 4, -0.1f, 0.1f), dy = rand_vec(NH, 5);
  std::vector<float> res(NH), out(NH), dx(NH), dw(H), db(H);
  ln_fwd_ref(xa.data(), xb.data(), w.data(), b.data(), res.data(), out.data());
  ln_bwd_ref(res.data(), w.data(), dy.data(), dx.data(), dw.data(), db.data());
  float *d_xa = to_device(xa), *d_xb = to_device(xb), *d_w = to_device(w), *d_b = to_device(b), *d_dy = to_device(dy);
  float *d_res = to_device(res), *d_out = device_zeros<float>(NH), *d_r2 = device_zeros<float>(NH);
  float *d_dx = device_zeros<float>(NH), *d_dw = device_zeros<float>(H), *d_db = device_zeros<float>(H);
  const double F4 = sizeof(float);
  bool ok = true;
  if (want(args, 1)) {
    printf("forward v1 (cramc add_layernorm today)\n");
    add_ln_fwd_v1<<<cr_grid_rows(N), CR_BLOCK>>>(d_out, d_xa, d_xb, d_w, d_b);
    ok &= check("out", d_out, out.data(), NH, 1e-4f, 1e-4f);
    time_kernel("fwd v1", args.repeats, 3 * NH * F4,
                [&] { add_ln_fwd_v1<<<cr_grid_rows(N), CR_BLOCK>>>(d_out, d_xa, d_xb, d_w, d_b); });
    printf("backward v1 (cramc layernorm_grad today: dx only)\n");
    ln_bwd_v1<<<cr_grid_rows(N), CR_BLOCK>>>(d_dx, d_res, d_w, d_dy);
    ok &= check("dx", d_dx, dx.data(), NH, 1e-4f, 1e-3f);
    time_kernel("bwd v1", args.repeats, 3 * NH * F4, [&] { ln_bwd_v1<<<cr_grid_rows(N), CR_BLOCK>>>(d_dx, d_res, d_w, d_dy); });
  }
  if (want(args, 2)) {
    printf("forward v2 (registers, float4, writes residual + out)\n");
    cudaCheck(cudaMemset(d_out, 0, NH * sizeof(float)));
    add_ln_fwd_v2<<<cr_grid_rows(N), CR_BLOCK>>>(d_r2, d_out, d_xa, d_xb, d_w, d_b);
    ok &= check("residual", d_r2, res.data(), NH, 0.f, 0.f);
    ok &= check("out", d_out, out.data(), NH, 1e-4f, 1e-4f);
    time_kernel("fwd v2", args.repeats, 4 * NH * F4,
                [&] { add_ln_fwd_v2<<<cr_grid_rows(N), CR_BLOCK>>>(d_r2, d_out, d_xa, d_xb, d_w, d_b); });
    printf("backward v2 (dx + dw + db in one kernel)\n");
    int sms = 0;
    cudaCheck(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
    const int grid = 2 * sms;
    cudaCheck(cudaMemset(d_dx, 0, NH * sizeof(float)));
    ln_bwd_v2<<<grid, CR_BLOCK>>>(d_dx, d_dw, d_db, d_res, d_w, d_dy);
    ok &= check("dx", d_dx, dx.data(), NH, 1e-4f, 1e-3f);
    ok &= check("dw", d_dw, dw.data(), H, 1e-2f, 1e-3f);
    ok &= check("db", d_db, db.data(), H, 1e-2f, 1e-3f);
    // dw/db accumulate (+=): the timed runs keep adding, which costs the same
    time_kernel("bwd v2", args.repeats, 3 * NH * F4, [&] { ln_bwd_v2<<<grid, CR_BLOCK>>>(d_dx, d_dw, d_db, d_res, d_w, d_dy); });
  }
  if (want(args, 3)) {
    printf("dw, db v3 (cramc layernorm_wgrad + layernorm_bgrad today: block partials, then their sum)\n");
    char *d_t = device_zeros<char>(CR_SCR_PART + (size_t)PG_BLOCKS * 2 * H * sizeof(float));
    cudaCheck(cudaMemset(d_dw, 0, H * sizeof(float)));
    cudaCheck(cudaMemset(d_db, 0, H * sizeof(float)));
    ln_pgrad_partials_v3<<<PG_BLOCKS, CR_BLOCK>>>(d_res, d_dy, d_t);
    ln_pgrad_final_v3<<<(H + CR_BLOCK - 1) / CR_BLOCK, CR_BLOCK>>>(d_dw, d_db, d_t);
    ok &= check("dw", d_dw, dw.data(), H, 1e-2f, 1e-3f);
    ok &= check("db", d_db, db.data(), H, 1e-2f, 1e-3f);
    time_kernel("dw db v3", args.repeats, 2 * NH * F4, [&] {
      ln_pgrad_partials_v3<<<PG_BLOCKS, CR_BLOCK>>>(d_res, d_dy, d_t);
      ln_pgrad_final_v3<<<(H + CR_BLOCK - 1) / CR_BLOCK, CR_BLOCK>>>(d_dw, d_db, d_t);
    });
    cudaCheck(cudaFree(d_t));
  }
  if (want(args, 4)) {
    printf("backward v4 (cramc layernorm_grad + layernorm_wgrad/bgrad joined: dx and the block partials in one pass)\n");
    char *d_t = device_zeros<char>(CR_SCR_PART + (size_t)GP_BLOCKS * 2 * H * sizeof(float));
    cudaCheck(cudaMemset(d_dx, 0, NH * sizeof(float)));
    ln_bwd_params_v4<<<GP_BLOCKS, CR_BLOCK>>>(d_dx, d_res, d_w, d_dy, d_t);
    ln_bwd_final_v4<<<(H + CR_BLOCK - 1) / CR_BLOCK, CR_BLOCK>>>(d_dw, d_db, d_t);
    ok &= check("dx", d_dx, dx.data(), NH, 1e-4f, 1e-3f);
    ok &= check("dw", d_dw, dw.data(), H, 1e-2f, 1e-3f);
    ok &= check("db", d_db, db.data(), H, 1e-2f, 1e-3f);
    time_kernel("bwd v4", args.repeats, 3 * NH * F4, [&] {
      ln_bwd_params_v4<<<GP_BLOCKS, CR_BLOCK>>>(d_dx, d_res, d_w, d_dy, d_t);
      ln_bwd_final_v4<<<(H + CR_BLOCK - 1) / CR_BLOCK, CR_BLOCK>>>(d_dw, d_db, d_t);
    });
    cudaCheck(cudaFree(d_t));
  }
  for (float *p : { d_xa, d_xb, d_w, d_b, d_dy, d_res, d_out, d_r2, d_dx, d_dw, d_db }) cudaCheck(cudaFree(p));
  printf("layernorm: %s\n", ok ? "all checks passed" : "CHECK FAILED");
  return ok ? 0 : 1;
}
