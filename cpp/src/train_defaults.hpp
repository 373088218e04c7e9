// train_defaults.hpp - the C++ port's training defaults, generated from mlp/options.py:
//   python -m mlp.options --cpp-header > cpp/src/train_defaults.hpp
// Do not edit by hand; tests/test_options.py fails when this file and the table differ.
#pragma once

namespace mlp {
namespace defaults {

// The library version (mlp/_version.py): `mlp-cpp version` and the model files' library_version.
constexpr const char* kVersion = "0.2.0.dev0";

constexpr int kHiddenSizes[] = {256, 128};
constexpr int kEpochs = 25;
constexpr int kBatchSize = 128;  // 0 on the command line: full batch
constexpr const char* kOptimizer = "adam";
constexpr double kLearningRate = 0.0;  // 0: the optimizer's default (kOptimizers below)
constexpr double kMomentum = 0.9;
constexpr const char* kActivation = "relu";
constexpr const char* kLoss = "cross_entropy";
constexpr const char* kInit = "auto";
constexpr double kWeightDecay = -1.0;  // < 0: kWeightDecayAdamw for adamw, else 0
constexpr double kWeightDecayAdamw = 0.01;
constexpr double kDropout = 0.1;
constexpr double kClipValue = 0.0;  // 0: off
constexpr double kClipNorm = 0.0;  // 0: off
constexpr const char* kSchedule = "cosine";
constexpr long long kSeed = -1;  // < 0: draw a seed and print it (fit's seed=None)
constexpr bool kShuffle = true;
// Batch normalisation (mlp.layers): "" (off), "before" or "after" the activation.
constexpr const char* kBatchNorm = "";
constexpr double kBatchNormMomentum = 0.1;
constexpr double kBatchNormEps = 1e-05;

// What a model file may hold (mlp.options.MAX_*): refused before training, accepted by every reader.
constexpr long long kMaxWidth = 100000000;
constexpr unsigned kMaxHiddenLayers = 1000;
constexpr unsigned long long kMaxMetadataBytes = 16777216ULL;

// The names each option takes, in the Python package's order (mlp.optimizers.OPTIMIZERS,
// mlp.schedules.SCHEDULES, mlp.activations.ACTIVATIONS, mlp.losses.LOSSES,
// mlp.initializers.INITIALIZERS). The port refuses by name one it does not implement, and its
// unit test `defaults` fails while any is missing.
struct OptimizerName {
  const char* name;
  double learning_rate;  // without --lr (mlp.options.DEFAULT_LEARNING_RATES)
};
constexpr OptimizerName kOptimizers[] = {
    {"sgd", 0.1},
    {"momentum", 0.05},
    {"nesterov", 0.05},
    {"rmsprop", 0.001},
    {"adam", 0.001},
    {"adamw", 0.001},
};
constexpr const char* kSchedules[] = {"constant", "step", "exponential", "cosine", "plateau"};
constexpr const char* kActivations[] = {"identity", "relu", "leaky_relu", "sigmoid", "tanh"};
constexpr const char* kLosses[] = {"cross_entropy", "mse", "squared_error", "binary_cross_entropy", "poisson"};
constexpr const char* kInitializers[] = {"he_normal", "he_uniform", "glorot_normal", "glorot_uniform", "xavier_normal", "xavier_uniform", "lecun_normal", "lecun_uniform", "normal"};

}  // namespace defaults
}  // namespace mlp
