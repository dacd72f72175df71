{
  # glonet_cnn (the ResNet20 engine) needs oneDNN's headers and library (Debian/Ubuntu:
  # libdnnl-dev). scripts/build-native.mjs sets glonet_cnn=1 (through GYP_DEFINES) only when a
  # test compile finds them, and dnnl_dir to a prefix holding include/ and lib/ when oneDNN is
  # not in the compiler's default paths; without it only glonet_fused is built.
  "variables": {
    "glonet_cnn%": "0",
    "dnnl_dir%": ""
  },
  "targets": [
    {
      "target_name": "glonet_fused",
      "sources": ["src/mlp/fused_mlp.cc", "src/mlp/block_mlp.cc", "src/vit/vit_engine.cc"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags": ["-O3", "-ffp-contract=off", "-fno-math-errno"],
      "cflags_cc": ["-O3", "-std=c++17", "-ffp-contract=off", "-fno-math-errno"],
      "ldflags": ["-pthread"],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "OTHER_CFLAGS": ["-O3", "-ffp-contract=off"]
      },
      "msvs_settings": { "VCCLCompilerTool": { "ExceptionHandling": 1, "AdditionalOptions": ["/std:c++17", "/O2"] } }
    }
  ],
  "conditions": [
    ["glonet_cnn==1", {
      "targets": [
        {
          "target_name": "glonet_cnn",
          "sources": ["src/cnn/cnn_engine.cc"],
          "cflags!": ["-fno-exceptions"],
          "cflags_cc!": ["-fno-exceptions"],
          "cflags": ["-O3", "-ffp-contract=off", "-fno-math-errno"],
          "cflags_cc": ["-O3", "-std=c++17", "-ffp-contract=off", "-fno-math-errno"],
          "ldflags": ["-pthread"],
          "libraries": ["-ldnnl", "-ldl"],
          "conditions": [
            ["dnnl_dir!=''", {
              "include_dirs": ["<(dnnl_dir)/include"],
              "library_dirs": ["<(dnnl_dir)/lib", "<(dnnl_dir)/lib64"],
              "ldflags": ["-Wl,-rpath,<(dnnl_dir)/lib", "-Wl,-rpath,<(dnnl_dir)/lib64"],
              "xcode_settings": { "OTHER_LDFLAGS": ["-Wl,-rpath,<(dnnl_dir)/lib"] }
            }]
          ],
          "xcode_settings": {
            "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
            "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
            "OTHER_CFLAGS": ["-O3", "-ffp-contract=off"]
          }
        }
      ]
    }]
  ]
}
