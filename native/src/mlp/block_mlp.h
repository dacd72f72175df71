// The two-layer-block MLP engine (block_mlp.cc) lives in the glonet_fused addon beside the GloNet
// MLP engine: fused_mlp.cc's module initializer adds its functions with this.
#pragma once

#include <node_api.h>

// Adds blockCreate, blockStep, blockGradients, blockPredict, blockEvaluate and blockDestroy.
void glonet_define_block_mlp(napi_env env, napi_value exports);
