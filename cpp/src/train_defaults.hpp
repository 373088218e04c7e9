// train_defaults.hpp - the C++ port's training defaults, generated from mlp/options.py:
//   python -m mlp.options --cpp-header > cpp/src/train_defaults.hpp
// Do not edit by hand; tests/test_options.py fails when this file and the table differ.
#pragma once

namespace mlp {
namespace defaults {

constexpr int kHiddenSizes[] = {256, 128};
constexpr int kEpochs = 25;
constexpr int kBatchSize = 128;  // 0 on the command line: full batch
constexpr const char* kOptimizer = "adam";
constexpr double kLearningRate = 0.0;  // 0: the optimizer's default below
constexpr double kLearningRate_sgd = 0.1;
constexpr double kLearningRate_momentum = 0.05;
constexpr double kLearningRate_nesterov = 0.05;
constexpr double kLearningRate_rmsprop = 0.001;
constexpr double kLearningRate_adam = 0.001;
constexpr double kLearningRate_adamw = 0.001;
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

// What a model file may hold (mlp.options.MAX_*): refused before training, accepted by every reader.
constexpr long long kMaxWidth = 100000000;
constexpr unsigned kMaxHiddenLayers = 1000;
constexpr unsigned long long kMaxMetadataBytes = 16777216ULL;

}  // namespace defaults
}  // namespace mlp
