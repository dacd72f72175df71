// The measurement behind the fused ViT engine's choice of kernels (docs/vit-engine.md): the
// matrix products of one chunk of its training step (8 images, one encoder, width 128, 4 heads,
// feed-forward 256; 28x28 images -> 50 tokens, 32x32 -> 65), timed with our AVX-512 kernels
// (native/src/vit/vit_kernels.inc; the per-head packing of attention operands included, as the
// engine packs them per call) and with oneDNN 2.6 matmul primitives (created once, one thread,
// strided descriptors so that nothing is copied), on the same operands. Each repetition times
// every product with ours, then with oneDNN (20 calls each); the best of 7 repetitions counts.
// Needs an AVX-512 CPU and Debian's libdnnl-dev:
//
//   g++ -O3 -std=c++17 -fopenmp bench/vit-kernels.cc -o /tmp/vit-kernels -ldnnl && /tmp/vit-kernels 50
//   (the argument: tokens, 50 for 28x28 images, 65 for 32x32)
#include <oneapi/dnnl/dnnl.hpp>
#include <omp.h>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>
#include <immintrin.h>
namespace {
#include "../native/src/vit/vit_simd.h"
}
namespace K = vit_avx512;
namespace dn = dnnl;
using dt = dn::memory::data_type;
static double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

struct Prod {
  const char* name; int M, N, K; bool tn; int calls;
  int lda, ldb, ldc;  // ours: A (lda), B source layout: NN weights [K x N] row-major (ldb) or transposed; C (ldc)
  bool btrans;        // NN: B given as [N x K] (a weight to use transposed), packed per call for small ones
  bool packPerCall;   // ours packs B inside the timed call (attention), else B is pre-packed (weights)
};

int main(int argc, char** argv) {
  omp_set_num_threads(1);
  const int T = argc > 1 ? atoi(argv[1]) : 50;
  const int CI = 8, R = CI * T, D = 128, F = 256, dh = 32, H = 4;
  std::vector<Prod> P = {
    {"fwd qkv", R, 3 * D, D, false, 1, D, 3 * D, 3 * D, false, false},
    {"fwd scores", T, T, dh, false, CI * H, 3 * D, 3 * D, T, true, true},
    {"fwd P.V", T, dh, T, false, CI * H, T, 3 * D, D, false, true},
    {"fwd out proj", R, D, D, false, 1, D, D, D, false, false},
    {"fwd ffn1", R, F, D, false, 1, D, F, F, false, false},
    {"fwd ffn2", R, D, F, false, 1, F, D, D, false, false},
    {"bwd dW2", F, D, R, true, 1, F, D, D, false, false},
    {"bwd dH", R, F, D, false, 1, D, D, F, true, false},
    {"bwd dW1", D, F, R, true, 1, D, F, F, false, false},
    {"bwd dY1", R, D, F, false, 1, F, F, D, true, false},
    {"bwd dWo", D, D, R, true, 1, D, D, D, false, false},
    {"bwd dmerged", R, D, D, false, 1, D, D, D, true, false},
    {"bwd dP", T, T, dh, false, CI * H, D, 3 * D, T, true, true},
    {"bwd dV", T, dh, T, true, CI * H, T, D, 3 * D, false, false},
    {"bwd dQ", T, dh, T, false, CI * H, T, 3 * D, 3 * D, false, true},
    {"bwd dK", T, dh, T, true, CI * H, T, 3 * D, 3 * D, false, false},
    {"bwd dWqkv", D, D, R, true, 3, D, 3 * D, D, false, false},
    {"bwd dX", R, D, 3 * D, false, 1, 3 * D, 3 * D, D, true, false},
  };
  dn::engine eng(dn::engine::kind::cpu, 0);
  dn::stream st(eng);
  std::vector<float> A(4 << 20), B(4 << 20), C(4 << 20), Pk(4 << 20);
  for (auto& x : A) x = (rand() % 1000) / 1000.f - .5f;
  for (auto& x : B) x = (rand() % 1000) / 1000.f - .5f;
  struct Runner { std::function<void()> ours, dnn; std::string impl; double bestOurs = 1e9, bestDnn = 1e9; };
  std::vector<Runner> run(P.size());
  std::vector<dn::matmul> prims;
  std::vector<std::vector<dn::memory>> mems;
  prims.reserve(P.size());
  mems.reserve(P.size());
  for (size_t i = 0; i < P.size(); ++i) {
    const Prod& p = P[i];
    if (!p.tn) {
      run[i].ours = [&, i] {
        const Prod& q = P[i];
        if (!q.packPerCall) K::pack_b(B.data(), q.btrans ? q.K : q.N, q.btrans, q.K, q.N, Pk.data());  // once a step in the engine; cheap
        for (int c = 0; c < q.calls; ++c) {
          if (q.packPerCall) K::pack_b(B.data() + c * 7, q.ldb, q.btrans, q.K, q.N, Pk.data());
          K::gemm_nn(q.M, q.N, q.K, A.data() + c * 7, q.lda, Pk.data(), C.data(), q.ldc);
        }
      };
    } else {
      // W[M x N] = A^T D: A is K (rows) x M (lda), D is K x N (ldb)
      run[i].ours = [&, i] { const Prod& q = P[i]; for (int c = 0; c < q.calls; ++c) K::gemm_tn(q.M, q.N, q.K, A.data() + c * 7, q.lda, B.data() + c * 7, q.ldb, C.data(), q.ldc, false); };
    }
    dn::memory::desc ad = p.tn ? dn::memory::desc({p.M, p.K}, dt::f32, dn::memory::dims{1, p.lda}) : dn::memory::desc({p.M, p.K}, dt::f32, dn::memory::dims{p.lda, 1});
    dn::memory::desc bd = p.tn ? dn::memory::desc({p.K, p.N}, dt::f32, dn::memory::dims{p.ldb, 1})
                               : (p.btrans ? dn::memory::desc({p.K, p.N}, dt::f32, dn::memory::dims{1, p.packPerCall ? p.ldb : p.K}) : dn::memory::desc({p.K, p.N}, dt::f32, dn::memory::dims{p.packPerCall ? p.ldb : p.N, 1}));
    dn::memory::desc cd({p.M, p.N}, dt::f32, dn::memory::dims{p.ldc, 1});
    dn::matmul::primitive_desc pd(dn::matmul::desc(ad, bd, cd), eng);
    prims.emplace_back(pd);
    run[i].impl = pd.impl_info_str();
    mems.emplace_back();
    for (int c = 0; c < p.calls; ++c) { mems[i].emplace_back(ad, eng, A.data() + c * 7); mems[i].emplace_back(bd, eng, B.data() + c * 7); }
    mems[i].emplace_back(cd, eng, C.data());
    run[i].dnn = [&, i] {
      for (int c = 0; c < P[i].calls; ++c)
        prims[i].execute(st, {{DNNL_ARG_SRC, mems[i][2 * c]}, {DNNL_ARG_WEIGHTS, mems[i][2 * c + 1]}, {DNNL_ARG_DST, mems[i].back()}});
      st.wait();
    };
  }
  for (int r = 0; r < 7; ++r) {
    for (auto& x : run) { double t0 = now(); for (int k = 0; k < 20; ++k) x.ours(); x.bestOurs = std::min(x.bestOurs, (now() - t0) / 20); }
    for (auto& x : run) { double t0 = now(); for (int k = 0; k < 20; ++k) x.dnn(); x.bestDnn = std::min(x.bestDnn, (now() - t0) / 20); }
  }
  double totOurs = 0, totDnn = 0, totFlop = 0;
  printf("tokens %d, rows a chunk %d\n%-14s %6s %6s %6s %5s  %9s %9s\n", T, R, "product", "M", "N", "K", "calls", "ours us", "oneDNN us");
  for (size_t i = 0; i < P.size(); ++i) {
    const Prod& p = P[i];
    const double flop = 2.0 * p.M * p.N * p.K * p.calls;
    totOurs += run[i].bestOurs; totDnn += run[i].bestDnn; totFlop += flop;
    printf("%-14s %6d %6d %6d %5d  %9.1f %9.1f   (%.0f / %.0f GFLOP/s; oneDNN %s)\n", p.name, p.M, p.N, p.K, p.calls, run[i].bestOurs * 1e6, run[i].bestDnn * 1e6,
           flop / run[i].bestOurs / 1e9, flop / run[i].bestDnn / 1e9, run[i].impl.c_str());
  }
  printf("one encoder, one chunk: ours %.0f us (%.0f GFLOP/s), oneDNN %.0f us (%.0f GFLOP/s); oneDNN / ours = %.3f\n", totOurs * 1e6, totFlop / totOurs / 1e9, totDnn * 1e6, totFlop / totDnn / 1e9, totDnn / totOurs);
}
