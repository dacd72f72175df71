// The fused ViT engine (vit_engine.cc) lives in the glonet_fused addon beside the MLP engines:
// fused_mlp.cc's module initializer adds its functions with this.
#pragma once

#include <node_api.h>

// Adds vitCreate, vitStep, vitGradients, vitPredict, vitDestroy, vitFlushStates, vitKernels and vitInfo.
void glonet_define_vit(napi_env env, napi_value exports);
