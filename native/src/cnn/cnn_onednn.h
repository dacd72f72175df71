// oneDNN glue for the fused CNN engine (cnn_engine.cc): one-thread primitives under the OpenMP
// runtime, convolution primitive descriptors for oneDNN 2.x and 3.x (bias, ReLU and sum
// post-ops), reorders, and the CPU instruction set oneDNN dispatches to.
//
// Included by cnn_engine.cc inside its anonymous namespace, after <oneapi/dnnl/dnnl.hpp>.

namespace dn = dnnl;
using tag = dn::memory::format_tag;
using dt = dn::memory::data_type;

#if defined(DNNL_CPU_RUNTIME) && defined(DNNL_RUNTIME_OMP) && DNNL_CPU_RUNTIME == DNNL_RUNTIME_OMP
#define GLONET_OMP 1
#else
#define GLONET_OMP 0
#endif

// oneDNN with the OpenMP runtime runs a primitive on omp_get_max_threads() threads of the calling
// thread; one is what every thread of this engine wants. The OpenMP functions are looked up in
// the process (libdnnl has loaded the OpenMP library), so this addon needs no OpenMP link flags.
#if GLONET_OMP
struct OmpApi {
  void (*set)(int) = nullptr;
  int (*get)() = nullptr;
  OmpApi() {
    set = reinterpret_cast<void (*)(int)>(dlsym(RTLD_DEFAULT, "omp_set_num_threads"));
    get = reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "omp_get_max_threads"));
    if (!set || !get) set = nullptr, get = nullptr;
  }
};
const OmpApi& omp_api() {
  static const OmpApi api;
  return api;
}
#endif

void single_threaded_onednn() {
#if GLONET_OMP
  if (omp_api().set) omp_api().set(1);
#endif
}

struct OneThreadScope {  // on the calling (JavaScript) thread: restore the setting afterwards
#if GLONET_OMP
  int prev = 0;
  OneThreadScope() {
    if (omp_api().get) {
      prev = omp_api().get();
      omp_api().set(1);
    }
  }
  ~OneThreadScope() {
    if (omp_api().set && prev > 0) omp_api().set(prev);
  }
#endif
};

// ----- primitive descriptors (oneDNN 2.x and 3.x) -----

// User-managed scratchpad; post-ops: `sum` (dst += result, before the ReLU) and a ReLU.
dn::primitive_attr make_attr(bool relu, bool sum = false) {
  dn::primitive_attr a;
  a.set_scratchpad_mode(dn::scratchpad_mode::user);
  if (relu || sum) {
    dn::post_ops po;
    if (sum) po.append_sum(1.f);
    if (relu) {
#if DNNL_VERSION_MAJOR >= 3
      po.append_eltwise(dn::algorithm::eltwise_relu, 0.f, 0.f);
#else
      po.append_eltwise(1.f, dn::algorithm::eltwise_relu, 0.f, 0.f);
#endif
    }
    a.set_post_ops(po);
  }
  return a;
}

struct Geometry {
  dn::memory::dims strides, padL, padR;
};

dn::convolution_forward::primitive_desc fwd_pd(const dn::engine& eng, dn::algorithm al,
                                               const dn::memory::desc& src, const dn::memory::desc& w,
                                               const dn::memory::desc* b, const dn::memory::desc& dst,
                                               const Geometry& g, bool relu, bool sum = false) {
  const auto attr = make_attr(relu, sum);
  const auto pk = dn::prop_kind::forward_training;
#if DNNL_VERSION_MAJOR >= 3
  if (b) return {eng, pk, al, src, w, *b, dst, g.strides, g.padL, g.padR, attr};
  return {eng, pk, al, src, w, dst, g.strides, g.padL, g.padR, attr};
#else
  if (b) return {dn::convolution_forward::desc(pk, al, src, w, *b, dst, g.strides, g.padL, g.padR), attr, eng};
  return {dn::convolution_forward::desc(pk, al, src, w, dst, g.strides, g.padL, g.padR), attr, eng};
#endif
}

dn::convolution_backward_data::primitive_desc bwd_data_pd(
    const dn::engine& eng, dn::algorithm al, const dn::memory::desc& diffSrc,
    const dn::memory::desc& w, const dn::memory::desc& diffDst, const Geometry& g,
    const dn::convolution_forward::primitive_desc& hint) {
  const auto attr = make_attr(false);
#if DNNL_VERSION_MAJOR >= 3
  return {eng, al, diffSrc, w, diffDst, g.strides, g.padL, g.padR, hint, attr};
#else
  return {dn::convolution_backward_data::desc(al, diffSrc, w, diffDst, g.strides, g.padL, g.padR), attr, eng, hint};
#endif
}

dn::convolution_backward_weights::primitive_desc bwd_weights_pd(
    const dn::engine& eng, dn::algorithm al, const dn::memory::desc& src,
    const dn::memory::desc& diffW, const dn::memory::desc* diffB, const dn::memory::desc& diffDst,
    const Geometry& g, const dn::convolution_forward::primitive_desc& hint) {
  const auto attr = make_attr(false);
#if DNNL_VERSION_MAJOR >= 3
  if (diffB) return {eng, al, src, diffW, *diffB, diffDst, g.strides, g.padL, g.padR, hint, attr};
  return {eng, al, src, diffW, diffDst, g.strides, g.padL, g.padR, hint, attr};
#else
  if (diffB) {
    return {dn::convolution_backward_weights::desc(al, src, diffW, *diffB, diffDst, g.strides, g.padL, g.padR), attr, eng, hint};
  }
  return {dn::convolution_backward_weights::desc(al, src, diffW, diffDst, g.strides, g.padL, g.padR), attr, eng, hint};
#endif
}

dn::reorder::primitive_desc reorder_pd(const dn::engine& eng, const dn::memory::desc& from,
                                       const dn::memory::desc& to) {
  dn::primitive_attr attr;
  attr.set_scratchpad_mode(dn::scratchpad_mode::user);
  return dn::reorder::primitive_desc(eng, from, eng, to, attr);
}

// AVX-512 machines get 16-channel blocked activations (nChw16c, oneDNN's native layout there,
// which its Winograd kernels require); others keep NHWC, which oneDNN's AVX2 kernels read.
bool isa_is_avx512() {
  switch (static_cast<int>(dn::get_effective_cpu_isa())) {
    case dnnl_cpu_isa_avx512_core:
    case dnnl_cpu_isa_avx512_core_vnni:
    case dnnl_cpu_isa_avx512_core_bf16:
    case dnnl_cpu_isa_avx512_core_amx:
      return true;
    default:
      return false;
  }
}

const char* isa_name() {
  switch (static_cast<int>(dn::get_effective_cpu_isa())) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    default: return "other";
  }
}
