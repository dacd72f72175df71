// Node-API glue shared by the native engines (mlp/, cnn/): error reporting, typed-array access,
// the engine handle that JavaScript holds as an external value, and the float-mode query.
//
// Each engine defines GLONET_MODULE (its addon name, the prefix of every error message) before
// including this file, and includes it inside its own anonymous namespace, after <string>, <vector>
// and common/float_mode.h.
#ifndef GLONET_MODULE
#error "define GLONET_MODULE (the addon's name) before including napi_util.h"
#endif

// Returns nullptr (a JavaScript exception is pending) when a Node-API call fails.
#define CHECK(call)                                                                   \
  do {                                                                                \
    if ((call) != napi_ok) {                                                          \
      napi_throw_error(env, nullptr, GLONET_MODULE ": Node-API call failed: " #call); \
      return nullptr;                                                                 \
    }                                                                                 \
  } while (0)

inline napi_value throw_error(napi_env env, const std::string& msg) {
  napi_throw_error(env, nullptr, (std::string(GLONET_MODULE ": ") + msg).c_str());
  return nullptr;
}

// A typed array of the wanted element type: its data pointer and element count.
inline bool get_typed(napi_env env, napi_value val, napi_typedarray_type want, void** data, size_t* length) {
  bool is = false;
  if (napi_is_typedarray(env, val, &is) != napi_ok || !is) return false;
  napi_typedarray_type type;
  napi_value ab;
  size_t off = 0;
  if (napi_get_typedarray_info(env, val, &type, length, data, &ab, &off) != napi_ok) return false;
  return type == want;
}

inline bool get_f32(napi_env env, napi_value val, float** data, size_t* length) {
  void* p = nullptr;
  if (!get_typed(env, val, napi_float32_array, &p, length)) return false;
  *data = static_cast<float*>(p);
  return true;
}

inline bool get_int_prop(napi_env env, napi_value obj, const char* name, int32_t* out) {
  napi_value v;
  if (napi_get_named_property(env, obj, name, &v) != napi_ok) return false;
  return napi_get_value_int32(env, v, out) == napi_ok;
}

// What JavaScript holds: the engine and references keeping alive the typed arrays it works in
// (parameters and optimizer slots, owned by JavaScript and updated in place).
template <class Engine, int NRefs>
struct Handle {
  Engine* engine = nullptr;
  napi_ref refs[NRefs] = {};

  void release(napi_env env) {
    delete engine;
    engine = nullptr;
    for (auto& r : refs) {
      if (r) napi_delete_reference(env, r);
      r = nullptr;
    }
  }

  static void finalize(napi_env env, void* data, void*) {
    Handle* h = static_cast<Handle*>(data);
    h->release(env);
    delete h;
  }

  // Takes ownership of `h`: references args[0..NRefs) and returns the external value (nullptr
  // with an exception pending on failure, `h` then deleted).
  static napi_value wrap(napi_env env, Handle* h, const napi_value* args) {
    for (int i = 0; i < NRefs; ++i) napi_create_reference(env, args[i], 1, &h->refs[i]);
    napi_value ext;
    if (napi_create_external(env, h, finalize, nullptr, &ext) != napi_ok) {
      h->release(env);
      delete h;
      return throw_error(env, "create: napi_create_external failed");
    }
    return ext;
  }

  // The engine behind an external value, or nullptr once destroyed.
  static Engine* engine_of(napi_env env, napi_value v) {
    void* data = nullptr;
    if (napi_get_value_external(env, v, &data) != napi_ok || !data) return nullptr;
    return static_cast<Handle*>(data)->engine;
  }

  // destroy(handle): frees the engine now rather than at garbage collection.
  static napi_value destroy(napi_env env, napi_callback_info info) {
    size_t argc = 1;
    napi_value argv[1];
    CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
    void* data = nullptr;
    if (argc >= 1 && napi_get_value_external(env, argv[0], &data) == napi_ok && data)
      static_cast<Handle*>(data)->release(env);
    return nullptr;
  }
};

// flushStates(handle) -> [caller, helper 1, ...]: whether each thread of the engine computes with
// subnormal floats flushed (common/float_mode.h; null where not known), for the tests. The
// engine answers flushStates() (its thread pool's).
template <class H>
napi_value flush_states(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  auto* e = argc >= 1 ? H::engine_of(env, argv[0]) : nullptr;
  if (!e) return throw_error(env, "engine is disposed");
  const std::vector<int> states = e->flushStates();
  napi_value arr;
  CHECK(napi_create_array_with_length(env, states.size(), &arr));
  for (size_t i = 0; i < states.size(); ++i) {
    napi_value v;
    if (states[i] < 0) {
      CHECK(napi_get_null(env, &v));
    } else {
      CHECK(napi_get_boolean(env, states[i] == 1, &v));
    }
    CHECK(napi_set_element(env, arr, (uint32_t)i, v));
  }
  return arr;
}

// An exported function's descriptor.
inline napi_property_descriptor method(const char* name, napi_callback fn) {
  return {name, nullptr, fn, nullptr, nullptr, nullptr, napi_default, nullptr};
}
