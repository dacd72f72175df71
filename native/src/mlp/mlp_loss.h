// The loss of a fused MLP engine's output rows and its gradient with respect to them (and through
// the linear head), shared by fused_mlp.cc and block_mlp.cc: mean squared error over rows x outputs, or softmax
// cross-entropy on integer labels (mean over rows), the means taken over the whole batch.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>

namespace {

enum LossKind { kMse = 0, kSoftmaxCe = 1 };

// Rows r0 .. r0+n of a batch of `rows`: out (n x nOut) against y (targets rows x nOut for MSE,
// class indices for softmax-ce). Writes dLoss/dOut into dOut (n x nOut) and returns the sum of
// the rows' losses (squared errors, or cross-entropies), to be divided by rows x nOut (MSE) or
// rows. A label outside [0, nOut) (the JavaScript side validates them) gives NaN, never an
// out-of-bounds read.
inline double output_loss(int lossKind, const float* out, const float* y, int r0, int n, int nOut,
                          int rows, float* dOut) {
  double loss = 0;
  if (lossKind == kMse) {
    const float scale = 2.f / (float)((double)rows * nOut);
    const float* yt = y + (size_t)r0 * nOut;
    for (int i = 0; i < n * nOut; ++i) {
      const float d = out[i] - yt[i];
      loss += (double)d * d;
      dOut[i] = d * scale;
    }
  } else {
    const double inv = 1.0 / rows;
    for (int r = 0; r < n; ++r) {
      const float* o = out + (size_t)r * nOut;
      float* d = dOut + (size_t)r * nOut;
      const float yl = y[r0 + r];
      const int label = (yl >= 0.f && yl < (float)nOut) ? (int)yl : -1;
      if (label < 0) {  // the JS side validates labels; never read out of bounds
        loss = std::nan("");
        for (int j = 0; j < nOut; ++j) d[j] = 0.f;
        continue;
      }
      double mx = o[0];
      for (int j = 1; j < nOut; ++j) mx = std::max(mx, (double)o[j]);
      double sum = 0;
      for (int j = 0; j < nOut; ++j) sum += std::exp((double)o[j] - mx);
      const double lse = mx + std::log(sum);
      loss += lse - o[label];
      for (int j = 0; j < nOut; ++j) {
        const double pj = std::exp((double)o[j] - lse);
        d[j] = (float)((pj - (j == label ? 1.0 : 0.0)) * inv);
      }
    }
  }
  return loss;
}

// The gradient with respect to the head's input: dIn (R x W) = dOut (R x nOut) . headK^T, headK
// being the head's [W, nOut] kernel.
inline void head_input_grad(const float* dOut, int R, int nOut, const float* headK, int W, float* dIn) {
  for (int r = 0; r < R; ++r) {
    const float* d = dOut + (size_t)r * nOut;
    float* s = dIn + (size_t)r * W;
    for (int j = 0; j < W; ++j) {
      float a = 0.f;
      for (int o = 0; o < nOut; ++o) a += d[o] * headK[(size_t)j * nOut + o];
      s[j] = a;
    }
  }
}

}  // namespace
