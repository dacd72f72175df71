// Node-API entry points shared by the fused MLP engines (fused_mlp.cc, block_mlp.cc), for a
// handle type H (napi_util.h's Handle) whose engine has nIn, nOut, lossKind, P and
//   double trainStep(x, y, rows, AdamParams, gradOut)   (gradOut null: a training step)
//   double lossOnly(x, y, rows)
//   void predict(x, rows, out)
//
//   step(handle, x, y, rows, hp: Float64Array [l2, b1, omb1, b2, omb2, omab1, omab2, eps, neglr])
//   gradients(handle, x, y, rows, hp, gradOut)
//   predict(handle, x, _, rows, out)
//   evaluate(handle, x, y, rows) -> data loss without the L2 penalty
//
//   flushStates(handle) -> napi_util.h's flush_states
//
// Every call that computes holds a glonet_fp::FlushScope (common/float_mode.h): subnormal floats
// are flushed on the calling thread for the call only.
//
// Include after <string>, <type_traits>, napi_util.h, mlp_kernels.h and mlp_loss.h, inside the engine's anonymous namespace.

// The most rows per tile a fused MLP engine accepts (a tile's activations are depth x tileRows x
// width floats per thread; the defaults are 48 to 64).
constexpr int kMaxTileRows = 4096;

template <class Engine>
bool read_xy(napi_env env, Engine* e, napi_value* argv, bool needY, const float** x,
             const float** y, int32_t* rows) {
  float *xp, *yp = nullptr;
  size_t nx, ny = 0;
  if (!get_f32(env, argv[1], &xp, &nx)) return false;
  if (needY && !get_f32(env, argv[2], &yp, &ny)) return false;
  if (napi_get_value_int32(env, argv[3], rows) != napi_ok) return false;
  if (*rows < 1 || nx < (size_t)*rows * e->nIn) return false;
  if (needY && ny < (size_t)*rows * (e->lossKind == kMse ? e->nOut : 1)) return false;
  *x = xp;
  *y = yp;
  return true;
}

// The arguments (handle, x, y, rows, ...) of a call: the live engine, x, y (when needY) and rows;
// null with an exception pending when they are wrong.
template <class H>
auto* engine_args(napi_env env, napi_callback_info info, napi_value* argv, size_t want, bool needY,
                  const char* what, const float** x, const float** y, int32_t* rows) {
  using Engine = std::remove_pointer_t<decltype(H::engine_of(env, argv[0]))>;
  size_t argc = want;
  Engine* none = nullptr;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc < want) {
    throw_error(env, std::string(what) + ": missing arguments");
    return none;
  }
  Engine* e = H::engine_of(env, argv[0]);
  if (!e) {
    throw_error(env, "engine is disposed");
    return none;
  }
  if (!read_xy(env, e, argv, needY, x, y, rows)) {
    throw_error(env, std::string(what) + (needY ? ": bad x/y/rows" : ": bad x/rows"));
    return none;
  }
  return e;
}

template <class H>
napi_value mlp_step_or_grad(napi_env env, napi_callback_info info, bool grad) {
  napi_value argv[6];
  const float *x, *y;
  int32_t rows;
  auto* e = engine_args<H>(env, info, argv, grad ? 6 : 5, true, grad ? "gradients" : "step", &x, &y, &rows);
  if (!e) return nullptr;
  size_t nhp = 0;
  void* hpv = nullptr;
  if (!get_typed(env, argv[4], napi_float64_array, &hpv, &nhp) || nhp < 9)
    return throw_error(env, std::string(grad ? "gradients" : "step") + ": hyper-parameters must be a Float64Array of 9");
  const double* hp = static_cast<const double*>(hpv);
  AdamParams ap{(float)hp[0], (float)hp[1], (float)hp[2], (float)hp[3], (float)hp[4],
                (float)hp[5], (float)hp[6], (float)hp[7], (float)hp[8]};
  float* gradOut = nullptr;
  if (grad) {
    size_t ng;
    if (!get_f32(env, argv[5], &gradOut, &ng) || ng != e->P)
      return throw_error(env, "gradients: out must be a Float32Array of the parameter count");
  }
  double loss;
  try {
    glonet_fp::FlushScope flush;
    loss = e->trainStep(x, y, rows, ap, gradOut);
  } catch (const std::exception& ex) {
    return throw_error(env, ex.what());
  }
  napi_value result;
  CHECK(napi_create_double(env, loss, &result));
  return result;
}

template <class H>
napi_value mlp_step(napi_env env, napi_callback_info info) { return mlp_step_or_grad<H>(env, info, false); }
template <class H>
napi_value mlp_gradients(napi_env env, napi_callback_info info) { return mlp_step_or_grad<H>(env, info, true); }

template <class H>
napi_value mlp_predict(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  const float *x, *y;
  int32_t rows;
  auto* e = engine_args<H>(env, info, argv, 5, false, "predict", &x, &y, &rows);
  if (!e) return nullptr;
  float* out;
  size_t n;
  if (!get_f32(env, argv[4], &out, &n) || n < (size_t)rows * e->nOut)
    return throw_error(env, "predict: out must be a Float32Array of rows*nOut");
  try {
    glonet_fp::FlushScope flush;
    e->predict(x, rows, out);
  } catch (const std::exception& ex) {
    return throw_error(env, ex.what());
  }
  return nullptr;
}

template <class H>
napi_value mlp_evaluate(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  const float *x, *y;
  int32_t rows;
  auto* e = engine_args<H>(env, info, argv, 4, true, "evaluate", &x, &y, &rows);
  if (!e) return nullptr;
  double loss;
  try {
    glonet_fp::FlushScope flush;
    loss = e->lossOnly(x, y, rows);
  } catch (const std::exception& ex) {
    return throw_error(env, ex.what());
  }
  napi_value result;
  CHECK(napi_create_double(env, loss, &result));
  return result;
}
